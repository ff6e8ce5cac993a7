// Objects written straight from spill lines (profile/line-object.ts) must be byte for byte what the
// object writer makes of the row mapped from strings, or not be written at all.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { identityOf, mergePartials } from '../../shared/engine/profile/merge';
import { BrazeObjectWriter } from '../../shared/engine/profile/object-writer';
import { LineObjectWriter } from '../../shared/engine/profile/line-object';
import { ObjectBytes, objectAt } from '../../shared/engine/thread/object-bytes';
import { isCanonicalNumber, isTrimmedAway } from '../../shared/engine/profile/text-bytes';
import { coerce } from '../../shared/snapshot/cdm-types';
import { RowMapper } from '../../shared/engine/profile/row-mapper';
import { ScannedRowWriter } from '../../shared/engine/read/scanned-rows';
import { encodeRow } from '../../shared/engine/spill/spill-codec';
import { CsvRecordScanner } from '../../shared/snapshot/csv-scanner';
import { exportDefinition } from '../helpers/definition';

const definition = (phone: boolean) =>
  exportDefinition({
    segments: ['A', 'B', 'C'],
    matching: {
      brazeCustomerId: 'Ext',
      email: 'Email',
      ...(phone ? { phone: 'Phone' } : {}),
      attributes: { first_name: 'First', last_name: 'Last', score: 'Score', vip: 'Vip' },
    },
  });
const COLUMNS = [
  { name: 'CustomerId' },
  { name: 'Ext' },
  { name: 'Email' },
  { name: 'Phone' },
  { name: 'First', dataType: 'string' },
  { name: 'Last' },
  { name: 'Score', dataType: 'double' },
  { name: 'Vip', dataType: 'boolean' },
];

/** The row's CSV record, as CI writes it (quoted when it must be, quotes doubled). */
const csvLine = (fields: string[]) => fields.map((f) => (/[",\r\n]/.test(f) ? `"${f.replaceAll('"', '""')}"` : f)).join(',');

/** The spill line the CSV scanner's path writes for the row (null when it leaves the row to the string path). */
function scannedLine(fields: string[], mapper: RowMapper): Buffer | null {
  const writer = new ScannedRowWriter(0);
  let line: Buffer | null = null;
  let records = 0;
  const scanner = new CsvRecordScanner(',', (r) => {
    records++;
    if (writer.write(r, mapper)) line = Buffer.from(writer.bytes.subarray(0, writer.length));
  });
  scanner.push(Buffer.from(`${csvLine(fields)}\n`));
  scanner.end();
  return records === 1 && !scanner.unusual ? line : null;
}

/** What the object writer makes of the row mapped from strings: the object, its identity and held fields. */
function fromStrings(fields: string[], mapper: RowMapper, writer: BrazeObjectWriter, segments: number[]) {
  const r = mapper.map(fields);
  if (!r.ok) return null;
  const profile = mergePartials([r.partial]);
  profile.segments = segments;
  return {
    object: Buffer.from(writer.profile(profile)).toString('latin1'), // compared byte for byte
    identity: identityOf(profile),
    heldFields: writer.heldFieldBits(profile),
    omitted: r.partial.omitted,
  };
}

function fromLine(line: Buffer, lines: LineObjectWriter, mapper: RowMapper, segments: number[]) {
  if (!lines.write(line, 0, line.length, mapper, segments)) return null;
  return { object: lines.bytes.toString('latin1', 0, lines.length), identity: lines.identity, heldFields: lines.heldFields };
}

describe('objects written from spill lines', () => {
  it('know what trim() removes, for every code point of the Basic Multilingual Plane', () => {
    const wrong: number[] = [];
    for (let cp = 0; cp < 0x10000; cp++) if (isTrimmedAway(cp) !== (String.fromCharCode(cp).trim() === '')) wrong.push(cp);
    expect(wrong).toEqual([]);
    expect(isTrimmedAway(0x1f600)).toBe(false);
  });

  // Rows as bench --wide writes them, and plain ones: the common path, which must not decline.
  const wide = (i: number) => `First${i} Zoë-Łucja 李小龍 Ἀθηνᾶ ${i % 97}, "the" second\nline: Ñandú Øster ${'ü'.repeat(i % 40)}`;
  it.each([
    ['plain', ['c1', 'u1', 'user1@example.com', '', 'First1', 'Last1', '12.5', 'true']],
    ['wide', ['c2', 'u2', 'user2@example.com', '', wide(2), wide(3), '0.5', '']],
    ['alias, no external ID', ['c3', '', 'user3@example.com', '', 'j starts with j', 'a "quoted" \\ name', '', 'false']],
    ['phone, long wide values', ['c4', 'u4', '', '+1 (555) 010-9999', wide(39).repeat(2), `${'é'.repeat(255)}`, '-3', '']],
  ])('write the object the strings give, without declining (%s)', (_, fields) => {
    for (const phone of [false, true]) {
      const def = definition(phone);
      const writer = new BrazeObjectWriter(def);
      const lines = new LineObjectWriter(def, writer);
      const mapper = new RowMapper(def, 1, COLUMNS);
      const expected = fromStrings(fields, mapper, writer, [1]);
      expect(expected?.omitted).toBeUndefined();
      const { omitted: _o, ...object } = expected!;
      expect(fromLine(scannedLine(fields, mapper)!, lines, mapper, [1])).toEqual(object);
      const stringPathLine = Buffer.from(encodeRow(1, mapper.keyOf(fields)!, fields, mapper.spillAt));
      expect(fromLine(stringPathLine, lines, mapper, [1])).toEqual(object);
    }
  });

  it('send a number as its bytes only when they are what JSON.stringify writes for its typed value', () => {
    const canonical = (text: string, type: 'int64' | 'double') =>
      isCanonicalNumber(Buffer.from(text), 0, text.length, type === 'int64');
    for (const yes of ['0', '12', '-3', '12.5', '-0.25', '0.000001', '123456789012345', '1234567.12345678'])
      expect(canonical(yes, 'double'), yes).toBe(true);
    for (const no of [
      '-0',
      '1.50',
      '+1',
      '0.0000001',
      '1e5',
      '1234567890123456',
      '01',
      '.5',
      '5.',
      '',
      '-',
      ' 3',
      '0.1234567890123456',
    ])
      expect(canonical(no, 'double'), no).toBe(false);
    expect(canonical('12', 'int64')).toBe(true);
    expect(canonical('12.5', 'int64')).toBe(false);
    const numeric = fc
      .array(fc.constantFrom('0', '1', '5', '9', '.', '-', '+', 'e', ' '), { maxLength: 22 })
      .map((c) => c.join(''));
    let sentAsBytes = 0;
    fc.assert(
      fc.property(numeric, fc.constantFrom('int64' as const, 'double' as const), (text, type) => {
        if (!canonical(text, type)) return;
        sentAsBytes++;
        const typed = coerce(text, type);
        expect(typed.ok && JSON.stringify(typed.value)).toBe(text);
      }),
      { numRuns: 20000 },
    );
    expect(sentAsBytes).toBeGreaterThan(100);
  });

  it('write in place after the objects before them, as write() does, growing the list when it must', () => {
    const def = definition(true);
    const writer = new BrazeObjectWriter(def);
    const lines = new LineObjectWriter(def, writer);
    const mapper = new RowMapper(def, 1, COLUMNS);
    const objects = new ObjectBytes();
    const expected: string[] = [];
    // Wide rows (none with a value to trim) until the list has grown past its first buffer more than once.
    for (let i = 0; objects.end < 100_000; i++) {
      const line = scannedLine(
        [`c${i}`, `u${i}`, `user${i}@example.com`, '', wide(2 + (i % 37)), wide(3 + (i % 37)), '0.5', ''],
        mapper,
      )!;
      expect(lines.write(line, 0, line.length, mapper, [1])).toBe(true);
      expected.push(lines.bytes.toString('latin1', 0, lines.length));
      expect(lines.writeInto(objects, line, 0, line.length, mapper, [1])).toBe(true);
    }
    // One that declines adds nothing.
    const declined = scannedLine(['c0', 'u0', ' padded@example.com', '', 'x', 'y', '', ''], mapper)!;
    expect(lines.writeInto(objects, declined, 0, declined.length, mapper, [1])).toBe(false);
    const list = objects.take();
    expect(list.ends.map((_, i) => Buffer.from(objectAt(list, i)).toString('latin1'))).toEqual(expected);
  });

  it('write what the strings give for bytes that are not well-formed UTF-8 (a decoder replaces them), or decline', () => {
    const def = definition(false);
    const writer = new BrazeObjectWriter(def);
    const lines = new LineObjectWriter(def, writer);
    const mapper = new RowMapper(def, 0, COLUMNS);
    let written = 0;
    // As a file in Windows-1252 has them: ü as one byte, 0xFC, in a value starting with j (a JSON token), or not.
    for (const [first, last] of [
      ['j\xfcrgen', 'Smith'],
      ['Smith', 'M\xfcller'],
      ['jo\xfc', 'a "quoted" j\nname'],
    ]) {
      const bytes = Buffer.from(`c1,u1,a@b.io,,${csvLine([first!, last!])},1,true\n`, 'latin1');
      let line: Buffer | null = null;
      const scanner = new CsvRecordScanner(',', (r) => {
        const w = new ScannedRowWriter(0);
        if (w.write(r, mapper)) line = Buffer.from(w.bytes.subarray(0, w.length));
        expect(fromStrings(r.fields(), mapper, writer, [0])?.object).toContain('\xef\xbf\xbd'); // U+FFFD
        const got = line && fromLine(line, lines, mapper, [0]);
        if (got) expect(got.object).toBe(fromStrings(r.fields(), mapper, writer, [0])!.object);
        written += got ? 1 : 0;
      });
      scanner.push(bytes);
      scanner.end();
      expect(line).not.toBeNull();
    }
    expect(written).toBeGreaterThan(0); // not only declined
  });

  it('decline what mapping would change or leave out: a value to trim, an invalid email, a value too long', () => {
    const def = definition(false);
    const writer = new BrazeObjectWriter(def);
    const lines = new LineObjectWriter(def, writer);
    const mapper = new RowMapper(def, 0, COLUMNS);
    const row = ['c1', 'u1', 'user1@example.com', '', 'First', 'Last', '1', 'true'];
    const declines = (change: (fields: string[]) => void) => {
      const fields = [...row];
      change(fields);
      const line = scannedLine(fields, mapper) ?? Buffer.from(encodeRow(0, mapper.keyOf(fields)!, fields, mapper.spillAt));
      return fromLine(line, lines, mapper, [0]) === null;
    };
    expect(declines(() => {})).toBe(false);
    expect(declines((f) => (f[4] = 'First\u3000'))).toBe(true);
    expect(declines((f) => (f[5] = '\nLast'))).toBe(true);
    expect(declines((f) => (f[2] = 'not an email'))).toBe(true);
    expect(declines((f) => (f[4] = 'x'.repeat(256)))).toBe(true);
    expect(declines((f) => (f[6] = 'twelve'))).toBe(true);
    expect(declines((f) => (f[1] = 'ü1'))).toBe(true);
  });

  it('write exactly what the strings give, or decline, for any row: from the scanner path and the string path, in several segments', () => {
    const piece = fc.constantFrom(
      'a', 'j', 'Z', '1', ' ', '\t', '\n', '\r\n', '\x0b', '\x01', '\x7f', '"', '\\', ',', 'é', '李', '😀',
      '\u00a0', '\u2028', '\u3000', '\ufeff', '\u0085', '@', '.', 'x@y.io', '+',
    ); // prettier-ignore
    const text = fc.array(piece, { maxLength: 8 }).map((p) => p.join(''));
    // Long around the 255-character limit, counted in UTF-16 code units (an emoji is two).
    const long = fc
      .tuple(text, fc.constantFrom('ü', '😀', 'a'), fc.integer({ min: 100, max: 300 }))
      .map(([t, c, n]) => `N${t}${c.repeat(n)}${t}n`);
    // Mostly values a CI export holds, now and then anything.
    const mostly = (usual: fc.Arbitrary<string>) => fc.oneof({ arbitrary: usual, weight: 4 }, { arbitrary: text, weight: 1 });
    const id = mostly(fc.constantFrom('', 'c1', 'c2', ' c3 ', 'j4', 'ü5'));
    const email = mostly(fc.constantFrom('', 'a@b.io', 'x.y@example.com', ' a@b.io', 'A@B.IO', 'bad'));
    const phone = mostly(fc.constantFrom('', '+15550109999', '555', ' 5550109999'));
    const score = mostly(fc.constantFrom('', '1', '-2.5', ' 3 ', 'x'));
    const vip = mostly(fc.constantFrom('', 'true', 'FALSE', 'yes'));
    const name = fc.oneof(
      text.map((t) => `N${t}n`),
      text,
      long,
    );
    const row = fc.tuple(id, id, email, phone, name, name, score, vip);
    let written = 0;
    let writtenFromRaw = 0;
    fc.assert(
      fc.property(row, fc.boolean(), fc.subarray([0, 1, 2], { minLength: 1 }), (fields, withPhone, segments) => {
        const def = definition(withPhone);
        const writer = new BrazeObjectWriter(def);
        const lines = new LineObjectWriter(def, writer);
        const mapper = new RowMapper(def, segments[0]!, COLUMNS);
        const expected = fromStrings(fields, mapper, writer, segments);
        if (expected === null) return; // refused: never spilled
        const key = mapper.keyOf(fields)!;
        const scanned = scannedLine(fields, mapper);
        for (const line of [scanned, Buffer.from(encodeRow(segments[0]!, key, fields, mapper.spillAt))]) {
          if (line === null) continue;
          const got = fromLine(line, lines, mapper, segments);
          if (got === null) continue;
          written++;
          if (line.includes('\x1fr')) writtenFromRaw++; // a raw token: a quoted field with a line feed or doubled quotes
          expect(expected.omitted).toBeUndefined();
          expect(got).toEqual({ object: expected.object, identity: expected.identity, heldFields: expected.heldFields });
        }
      }),
      { numRuns: 3000 },
    );
    expect(written).toBeGreaterThan(100); // the property is not met by declining everything
    expect(writtenFromRaw).toBeGreaterThan(20);
  });
});
