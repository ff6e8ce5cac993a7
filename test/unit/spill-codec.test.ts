// Spill lines: a row as read, cut down to the mapped columns, and mapped only in the bucket step.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BucketFiles, bufferBytesFor } from '../../shared/engine/spill/bucket-files';
import { RowMapper, spilledRowTyping } from '../../shared/engine/profile/row-mapper';
import { decodeRow, decodeRowAt, encodeRow, spillColumns } from '../../shared/engine/spill/spill-codec';
import { SpilledProfiles } from '../../shared/engine/spill/spilled-profiles';
import { exportDefinition } from '../helpers/definition';

const def = exportDefinition({
  segments: ['Main', 'Other'],
  matching: { email: 'Email', brazeCustomerId: 'Ext', attributes: { score: 'Score', city: 'City', vip: 'Vip' } },
});

describe('spill lines', () => {
  it('keep the mapped columns in one order: identifiers, email, phone, attributes by name', () => {
    expect(spillColumns(def).map((c) => c.column)).toEqual(['CustomerId', 'Ext', 'Email', 'City', 'Score', 'Vip']);
  });

  it.each([
    ['plain', ['c1', 'u1', 'x@example.com', 'Oslo']],
    ['newlines, separators, quotes, non-Latin', ['c\x1f2', '', 'line one\nline two', 'Anne, "Annie" 名前']],
    ['text starting with j, spaces kept', ['jc3', ' u3 ', 'j', '  ']],
  ])('round-trip the raw fields (%s), a column the table lacks read as empty', (_, fields) => {
    const line = encodeRow(4, 'the key', fields, [0, 1, 2, -1, 3]);
    expect(line).not.toContain('\n');
    expect(decodeRow(line)).toEqual({ seg: 4, key: 'the key', fields: [fields[0], fields[1], fields[2], '', fields[3]] });
  });

  it('decode in place within the text of many lines, and index by key from the bytes', () => {
    const rows = [
      { seg: 0, key: 'c1', fields: ['c1', 'u1'] },
      { seg: 12, key: 'j\x1fodd\r\nkey', fields: ['j\x1fodd\r\nkey', ''] },
      { seg: 1, key: 'c1', fields: ['c1', 'u2'] },
    ];
    const text = `${rows.map((r) => encodeRow(r.seg, r.key, r.fields, [0, 1])).join('\n')}\n`;
    let start = 0;
    for (const r of rows) {
      const end = text.indexOf('\n', start);
      expect(decodeRowAt(text, start, end)).toEqual(r);
      start = end + 1;
    }
    const spilled = new SpilledProfiles(Buffer.from(text));
    expect(spilled.count).toBe(2);
    expect([spilled.keyOf(0), spilled.keyOf(1)]).toEqual(['c1', 'j\x1fodd\r\nkey']);
    expect(spilled.rowsOf(0).map(decodeRow)).toEqual([rows[0], rows[2]]);
  });

  it("give a profile's segments when all its rows hold the same fields (then one row is mapped), else none", () => {
    const line = (seg: number, key: string, fields: string[]) => encodeRow(seg, key, fields, [0, 1, 2]);
    const text = `${[
      line(2, 'a', ['a', 'x', 'y']),
      line(11, 'b', ['b', 'x', 'y']),
      line(0, 'a', ['a', 'x', 'y']),
      line(0, 'b', ['b', 'x', 'yy']), // longer
      line(2, 'a', ['a', 'x', 'y']), // the same segment again
      line(0, 'c', ['c', 'x', 'y']),
      line(1, 'c', ['c', 'x', 'z']), // same length, other bytes
      line(5, 'd', ['d', 'x', 'y']),
    ].join('\n')}\n`;
    const spilled = new SpilledProfiles(Buffer.from(text));
    const byKey = (key: string) => spilled.segmentsIfAlike(spilled.find(key));
    expect([byKey('a'), byKey('b'), byKey('c'), byKey('d')]).toEqual([[0, 2], null, null, [5]]);
    expect(decodeRow(spilled.firstRowOf(spilled.find('a')))).toEqual({ seg: 2, key: 'a', fields: ['a', 'x', 'y'] });
  });
});

describe('a spilled row, mapped in the bucket step', () => {
  // The table's own column order (a header) and types (model.json), case as model.json has it.
  const tableColumns = [
    { name: 'vip', dataType: 'boolean' },
    { name: 'City' },
    { name: 'Email' },
    { name: 'score', dataType: 'int64' },
    { name: 'Ext' },
    { name: 'CustomerId' },
  ];
  const { mappers, digestSeed } = spilledRowTyping(def, { Main: tableColumns, Other: [] });

  it.each([
    ['all values', ['true', ' Oslo ', 'A@Example.com', '42', 'u1', 'c1']],
    ['invalid values left out', ['maybe', '', 'not-an-email', '4.2', '', 'c2']],
    ['no profile ID', ['0', 'Bergen', '', '', 'u3', '  ']],
  ])('maps as the row itself does (%s)', (_, fields) => {
    const direct = new RowMapper(def, 0, tableColumns);
    const key = direct.identify(fields);
    if (!key.ok) throw new Error('the row has an identifier');
    const spilled = decodeRow(encodeRow(0, key.key, fields, direct.spillAt));
    expect(mappers[spilled.seg]!.partialOf(spilled.fields)).toEqual(direct.partialOf(fields));
  });

  it('types seed the digests: other types, other digests for the same rows', () => {
    const retyped = spilledRowTyping(def, {
      Main: tableColumns.map((c) => ({ ...c, dataType: c.name === 'score' ? 'string' : c.dataType })),
      Other: [],
    });
    expect(retyped.digestSeed).not.toBe(digestSeed);
    expect(spilledRowTyping(def, { Main: tableColumns, Other: [] }).digestSeed).toBe(digestSeed);
  });
});

describe('bucket files', () => {
  it.each([0, 4096])(
    'keep lines in the order written, as strings or bytes, longer than their buffer too (%i buckets)',
    async (buckets) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'bucket-files-'));
      try {
        const files = new BucketFiles(dir, 'rows', buckets);
        const long = 'Zoë 李 '.repeat(10_000);
        const lines = ['first', long, 'third', `b${long}`, 'last'];
        files.write(3, lines[0]!);
        files.writeBytes(3, Buffer.from(`xx${lines[1]}yy`), 2, 2 + Buffer.byteLength(lines[1]!));
        files.writeBytes(3, Buffer.from(lines[2]!), 0, 5);
        files.write(3, lines[3]!);
        files.writeBytes(3, Buffer.from(lines[4]!), 0, 4);
        files.close();
        expect(await files.readText(3)).toBe(`${lines.join('\n')}\n`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('read back a range of whole lines into memory given again and again, grown when the range is larger', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bucket-files-'));
    try {
      const files = new BucketFiles(dir, 'lines', 8);
      const text = (from: number, n: number) => Array.from({ length: n }, (_, i) => `line ${from + i} Zoë\n`).join('');
      files.write(5, text(0, 3).slice(0, -1).replaceAll('\n', ' ')); // one long first line
      files.flushAll();
      const [, , , , , first] = files.sizes(8);
      for (let i = 0; i < 2_000; i++) files.write(5, `line ${i} Zoë`);
      files.flushAll();
      const [, , , , , end] = files.sizes(8);

      const small = await files.readRange(5, 0, first!, Buffer.alloc(4));
      expect(small.subarray(0, first!).toString()).toBe(`${text(0, 3).slice(0, -1).replaceAll('\n', ' ')}\n`);
      const grown = await files.readRange(5, first!, end!, small);
      expect(grown).not.toBe(small);
      expect(grown.subarray(0, end! - first!).toString()).toBe(text(0, 2_000));
      // A smaller range again: read into the same memory.
      const again = await files.readRange(5, 0, first!, grown);
      expect(again).toBe(grown);
      expect(again.subarray(0, first!).toString()).toBe(small.subarray(0, first!).toString());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hold at most 4 MB of buffers per kind of file, whatever the bucket count (4 KB each at the least)', () => {
    expect(bufferBytesFor(32)).toBe(32 * 1024);
    expect(bufferBytesFor(128)).toBe(32 * 1024);
    expect(bufferBytesFor(256)).toBe(16 * 1024);
    expect(bufferBytesFor(4096)).toBe(4 * 1024);
    for (const n of [1, 64, 256, 512, 1024]) expect(n * bufferBytesFor(n)).toBeLessThanOrEqual(4 * 1024 * 1024);
  });
});
