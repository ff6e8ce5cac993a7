// The CSV scanner against Papa Parse: a partition read either way spills the same lines (but for raw
// tokens, the scanner's own: the same text), counts the same rows and refuses the same ones with the
// same reasons, however its bytes are cut into chunks.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExportDefinitionSchema } from '../../shared/exports/schema';
import { papaReader, scannedReader } from '../../shared/engine/read/partition-readers';
import { PartitionRows, type RowSink } from '../../shared/engine/read/partition-rows';
import { RowMapper } from '../../shared/engine/profile/row-mapper';
import { encodeRow, rawText, textToken } from '../../shared/engine/spill/spill-codec';
import { CsvRecordScanner, papaLineEnd } from '../../shared/snapshot/csv-scanner';
import type { RejectedRow } from '../../shared/engine/thread/protocol';
import { exportDefinition } from '../helpers/definition';

const def = exportDefinition({
  segments: ['S'],
  matching: {
    profileId: 'CustomerId',
    brazeCustomerId: 'BrazeUserId',
    email: 'Email',
    attributes: { name: 'Name', score: 'Score' },
  },
});
const COLUMNS = [
  { name: 'CustomerId' },
  { name: 'Name' },
  { name: 'BrazeUserId' },
  { name: 'Email' },
  { name: 'Score', dataType: 'int64' },
];

/** A spill line with each raw token written as encodeRow writes its text. */
const withoutRawTokens = (line: string) =>
  line
    .split('\x1f')
    .map((token, i) => (i > 0 && token.startsWith('r') ? textToken(rawText(token.slice(1))) : token))
    .join('\x1f');

interface Read {
  lines: string[];
  /** Keys noted (their fnv1a32), when the partition is read for its keys only. */
  keys: number[];
  rejected: RejectedRow[];
  counted: number;
  scannerUsed: boolean;
  /** Raw tokens in the scanner's lines. */
  rawTokens: number;
}

/** Papa Parse's path, but taking the key of a row whatever its field count (from its leading fields). */
class AnyFieldCount extends RowMapper {
  override keyOf(fields: string[]): string | null {
    if (fields.length < this.identifierFields) return super.keyOf(fields);
    return super.keyOf(Array.from({ length: this.columns.length }, (_, i) => fields[i] ?? ''));
  }
}

/**
 * Reads `bytes` cut at `cuts`, with the scanner or with Papa Parse alone, as the partition step
 * would. `anyFieldCount`: Papa Parse's path notes the key of a row whatever its field count.
 */
async function read(
  bytes: Buffer,
  cuts: number[],
  scan: boolean,
  hasHeader: boolean | undefined = undefined,
  what: 'rows' | 'keys' = 'rows',
  exportDef = def,
  anyFieldCount = false,
  carryCompletionBytes?: number,
): Promise<Read> {
  const out: Read = { lines: [], keys: [], rejected: [], counted: 0, scannerUsed: false, rawTokens: 0 };
  const sink: RowSink = {
    segmentIndex: () => 0,
    countRow: () => void out.counted++,
    reject: (row) => void out.rejected.push(row),
    bucketFor: (hash) => hash % 7,
    takeRow: (table, bucket, key, _keyHash, fields) =>
      void out.lines.push(`${bucket}:${encodeRow(table.segIndex, key, fields, table.mapper!.spillAt)}`),
    takeLine: (table, bucket, line, record, need) => {
      out.scannerUsed = true;
      // Written in place (after other lines, within what measure() said), as the partition step
      // spills it, and on its own, as it sends it early: the same bytes.
      const spill = Buffer.alloc(need + 5, 0x41);
      const end = line.writeAt(record, table.mapper!, spill, new DataView(spill.buffer, spill.byteOffset, spill.length), 5);
      line.write(record, table.mapper!);
      if (!spill.subarray(5, end).equals(line.bytes.subarray(0, line.length))) out.lines.push('written in place otherwise');
      const text = line.bytes.toString('utf8', 0, line.length);
      // Well-formed UTF-8: the bytes of its text (rows digests are taken over these bytes).
      const same = Buffer.from(text).equals(line.bytes.subarray(0, line.length));
      // One line: a spill file's lines end at its line feeds.
      if (text.includes('\n')) out.lines.push(`a line feed in ${text}`);
      out.rawTokens += text.split('\x1fr').length - 1;
      out.lines.push(same ? `${bucket}:${withoutRawTokens(text)}` : `not the bytes of ${text}`);
    },
    noteOtherSegment: (keyHash) => void out.keys.push(keyHash),
    newMapper: (_, seg, columns) => new (anyFieldCount ? AnyFieldCount : RowMapper)(exportDef, seg, columns),
    sendingSegment: null,
    sendingSingles: false,
  };
  const rows = new PartitionRows(
    sink,
    { segment: 'S', columns: COLUMNS, blobName: 'f/S/S_1.csv', delimiter: ',', hasHeader },
    what,
  );
  const fail = (e: unknown) => {
    throw e;
  };
  const reader = scan
    ? scannedReader(',', rows, fail, carryCompletionBytes)
    : papaReader(rows.options, (ev) => rows.event(ev), fail);
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    // Each chunk in memory of its own, overwritten once pushed, as the ring's space is.
    const chunk = Uint8Array.from(bytes.subarray(from, cut));
    reader.push(chunk);
    chunk.fill(0x41);
    from = cut;
  }
  await reader.end();
  return out;
}

/** Whether `sub` is `of` with some elements left out, in order. */
function isSubsequence(sub: number[], of: number[]): boolean {
  let j = 0;
  for (const x of of) if (j < sub.length && sub[j] === x) j++;
  return j === sub.length;
}

/**
 * Read for its keys only (a segment read before the one sent early), the scanner notes every key
 * Papa Parse's path notes, in order. It may note one more where a row's field count is wrong: past
 * the identifiers a record is skipped to its end, its fields not counted (CsvRecordScanner
 * fieldsNeeded). That is safe: a key noted is only a "maybe" for the segment sent early, whose row
 * then takes the slower path that is always right; a key missed would send a profile early that
 * has rows elsewhere. Returns the keys the scanner noted.
 */
async function expectKeysAsPapa(bytes: Buffer, cuts: number[], hasHeader?: boolean, carryBytes?: number): Promise<number[]> {
  const scanned = (await read(bytes, cuts, true, hasHeader, 'keys', def, false, carryBytes)).keys;
  const papa = (await read(bytes, cuts, false, hasHeader, 'keys')).keys;
  const anyCount = (await read(bytes, cuts, false, hasHeader, 'keys', def, true)).keys;
  expect(isSubsequence(papa, scanned), `every key Papa Parse notes, in order; cut at ${cuts.join(',')}`).toBe(true);
  expect(isSubsequence(scanned, anyCount), `no key but a row's, whatever its field count; cut at ${cuts.join(',')}`).toBe(true);
  return scanned;
}

const cutsOf = (bytes: Buffer) => [
  [],
  ...Array.from({ length: bytes.length - 1 }, (_, i) => [i + 1]),
  [1, 2, 3, 5, 8, 13, 21, 34, 55].filter((c) => c < bytes.length),
];

async function expectSameAsPapa(
  text: string | Buffer,
  options: { scans: boolean; hasHeader?: boolean; rawTokens?: boolean },
): Promise<void> {
  const bytes = Buffer.from(text);
  for (const cuts of cutsOf(bytes)) {
    // Cut the same way: Papa Parse guesses the line end from the first piece it is given.
    const expected = await read(bytes, cuts, false, options.hasHeader);
    if (cuts.length === 0) expect(expected.counted).toBeGreaterThan(1);
    const scanned = await read(bytes, cuts, true, options.hasHeader);
    const compared = (r: Read) => ({ ...r, scannerUsed: undefined, rawTokens: undefined });
    expect(compared(scanned), `cut at ${cuts.join(',')}`).toEqual(compared(expected));
    if (options.rawTokens !== undefined)
      expect(scanned.rawTokens > 0, `raw tokens, cut at ${cuts.join(',')}`).toBe(options.rawTokens);
    const keys = await expectKeysAsPapa(bytes, cuts, options.hasHeader);
    if (cuts.length === 0) expect(keys.length).toBeGreaterThan(0);
    // In one piece, the scanner reads at least the rows before anything it leaves to Papa Parse.
    if (cuts.length === 0) expect(scanned.scannerUsed).toBe(options.scans);
  }
}

describe('the CSV scanner', () => {
  const wellFormed: Record<string, string> = {
    'plain rows with a header, LF': 'CustomerId,Name,BrazeUserId,Email,Score\nc1,Ann,u1,a@x.com,1\nc2,Bob,,b@x.com,2\n,Cy,u3,,\n',
    'CRLF line ends, no header, no last line end': 'c1,Ann,u1,a@x.com,1\r\nc2,Bob,u2,,2\r\nc3,Cy,u3,c@x.com,3',
    'quoted fields: delimiters, doubled quotes, newlines (LF and CRLF) in them, a quoted key':
      'c0,Zero,u0,,0\n"c1","Ann, ""the"" first\nline two",u1,,1\nc2,"x\r\ny","",,2\n"c""3",Cy,"u,3",,3\n',
    'a byte order mark, columns in another order, spaces around keys':
      '\ufeffBrazeUserId,Score,Name,CustomerId,Email\nu1,1,Ann, c1 ,\nu2,2,Bob,\t,b@x.com\n',
    'blank lines, non-Latin keys and values, values starting with j':
      '\nCustomerId,Name,BrazeUserId,Email,Score\n\nZoë-李,Ann,u1,,1\n\nc2,jane,u2,j@x.com,2\nj3,"j ""q"" \\\\",u3,,3\nc4,Ἀθηνᾶ,,,4\n',
    'refused rows: no identifier, too many fields, an identifier too long': `c1,Ann,u1,,1\n,No id,,,2\nc3,Too,many,fields,3,4\n${'x'.repeat(513)},Long,u4,,4\nc5,Eve,${'y'.repeat(513)},,5\nc6,Fine,u6,,6\n`,
    'a quote inside an unquoted field is text, control characters in values':
      'c1,Ann "the" first,u1,,1\nc"2,Bob\tTab,u2,,2\nc3,Bell\x07,u3,,3\n',
    'keys that start with j, or only a Braze customer ID': 'jc1,Ann,u1,,1\n,Bob,ju2,,2\n,Cy,u3,,3\n',
    // Written from their bytes: as JSON (a control character, a leading j) or undoubled as they are.
    'wide rows: quoted non-Latin values with newlines, doubled quotes, backslashes, control characters':
      'c1,"Zoë ""the"" 李\nsecond: Ñandú",u1,,1\nc2,"j ""q""\\ \x08\x0c\x0b\x1f\x7f😀",u2,,2\nc3,"""Ἀθηνᾶ""",u3,,3\nc4,"a\r\nb\tc",u4,,4\n',
    'wide rows with CRLF line ends': 'c1,"Zoë ""x""\r\nline 2",u1,,1\r\nc2,"j\\""",u2,,2\r\nc3,"李""",u3,,3\r\n',
  };
  for (const [name, text] of Object.entries(wellFormed)) {
    // A quoted field with a line feed or doubled quotes is a raw token wherever the partition is cut.
    const rawTokens = /^(quoted|wide|blank)/.test(name) ? true : /^(plain|CRLF)/.test(name) ? false : undefined;
    it(`spills what Papa Parse reads, cut anywhere: ${name}`, () => expectSameAsPapa(text, { scans: true, rawTokens }));
  }

  const readOnByPapa: Record<string, string> = {
    'text after a closing quote': 'c0,Al,u0,,0\nc1,Ann,u1,,1\nc2,"Bob" x,u2,,2\nc3,Cy,u3,,3\n',
    'an unclosed quote': 'c0,Al,u0,,0\nc1,Ann,u1,,1\nc2,"Bob,u2,,2\nc3,Cy,u3,,3\n',
    'a bare LF where lines end in CRLF': 'c0,Al,u0,,0\r\nc1,Ann,u1,,1\r\nc2,Bob,u2,,2\nc3,Cy,u3,,3\r\nc4,Di,u4,,4\r\n',
    'a quoted field followed by CRLF where lines end in LF': 'c0,Al,u0,,0\nc1,Ann,u1,,1\nc2,Bob,u2,,"2"\r\nc3,Cy,u3,,3\n',
  };
  for (const [name, text] of Object.entries(readOnByPapa)) {
    it(`leaves the rest of the partition to Papa Parse where it might read otherwise: ${name}`, () =>
      expectSameAsPapa(text, { scans: true }));
  }

  it('a row longer than a spill buffer, its long value quoted or not', async () => {
    const long = 'Zoë '.repeat(20_000);
    const text = `c0,Al,u0,,0\nc1,${long},u1,,1\nc2,"${long}\n""${long}""",u2,,2\nc3,Cy,u3,,3\n`;
    const bytes = Buffer.from(text);
    for (const cuts of [[], [100_000], [40_000, 80_000, 120_000, 160_000]]) {
      const scanned = await read(bytes, cuts, true);
      expect(scanned).toEqual({ ...(await read(bytes, cuts, false)), scannerUsed: true, rawTokens: scanned.rawTokens });
      expect(scanned.lines.length).toBe(4);
    }
  });

  it('a field several mapped attributes read, long and full of control characters', async () => {
    const many = ExportDefinitionSchema.parse({
      ...def,
      matching: {
        profileId: 'CustomerId',
        brazeCustomerId: 'BrazeUserId',
        email: 'Email',
        attributes: { a: 'Name', b: 'Name', c: 'Name', d: 'Name', e: 'Name', f: 'Name', g: 'Name', h: 'Name' },
      },
    });
    const name = `"${'\x01\x02'.repeat(6000)}"`;
    const text = `c0,Al,u0,,0\nc1,${name},u1,,1\nc2,${name},u2,,2\n`;
    const bytes = Buffer.from(text);
    const scanned = await read(bytes, [], true, undefined, 'rows', many);
    expect(scanned).toEqual({
      ...(await read(bytes, [], false, undefined, 'rows', many)),
      scannerUsed: true,
      rawTokens: scanned.rawTokens,
    });
    expect(scanned.lines[2]!.length).toBeGreaterThan(8 * 6 * 12_000);
  });

  it('a table that lacks most mapped columns: each line fits in the room measured for it', async () => {
    // Every spill column is written, with its separator, whether the table has it or not: the
    // room measured must count them, or a line written where little room is left loses its end.
    const attributes = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`a${i}`, `Elsewhere${i}`]));
    const sparse = ExportDefinitionSchema.parse({ ...def, matching: { ...def.matching, attributes } });
    const text = '7,Al,,,1\n8,Bo,,,2\n';
    const scanned = await read(Buffer.from(text), [], true, undefined, 'rows', sparse);
    expect(scanned.lines.some((l) => l.includes('in place otherwise'))).toBe(false);
    expect(scanned).toEqual({
      ...(await read(Buffer.from(text), [], false, undefined, 'rows', sparse)),
      scannerUsed: true,
      rawTokens: scanned.rawTokens,
    });
  });

  it('bytes that are not well-formed UTF-8, in fields written from their bytes, read as Papa Parse decodes them', async () => {
    const bad = ['c080', 'e08080', 'eda080', 'f4908080', 'e282', '80', 'ff', 'f09f98'];
    const row = (b: string, i: number) =>
      Buffer.concat([Buffer.from(`c${i},"x\n`), Buffer.from(b, 'hex'), Buffer.from(`""y""",u${i},,${i}\n`)]);
    // A well-formed field beside them (not in the first record: that one is read as strings, a header
    // or not) is a raw token all the same, however the partition is cut.
    await expectSameAsPapa(Buffer.concat([Buffer.from('c,"ok\n""",u,,9\nd,"ok\n""",v,,8\n'), ...bad.map(row)]), {
      scans: true,
      rawTokens: true,
    });
  });

  it('bare CR line ends: Papa Parse reads the whole partition', async () => {
    await expectSameAsPapa('c1,Ann,u1,,1\rc2,Bob,u2,,2\rc3,Cy,u3,,3\r', { scans: false });
  });

  it('a header given by model.json, and a first record that is data', async () => {
    await expectSameAsPapa('Id,N,B,E,S\nc1,Ann,u1,,1\nc2,Bob,u2,,2\n', { scans: true, hasHeader: false });
  });

  it('a malformed record after empty lines is refused as malformed, and the good row after it is kept', async () => {
    const text = '\n\nc1,Ann,u1,,1\n\nc2,"Bob" x",u2,,2\nc3,Cy,u3,,3\n';
    for (const scan of [false, true]) {
      const { rejected, lines } = await read(Buffer.from(text), [], scan);
      expect(rejected.map((r) => [r.record, r.reason.split(':')[0]])).toEqual([[2, 'malformed CSV']]);
      expect(lines.map((l) => l.split('\x1f')[1])).toEqual(['sc1', 'sc3']);
    }
  });

  it('reads the same rows and keys wherever the first piece ends, right after a CR included', async () => {
    // Quoted keys in CRLF lines: a line end guessed as CR from a first piece that ends after a CR
    // would read every key with its quotes, so a partition read for its keys would note none of them.
    const texts = [
      '"CustomerId","Name","BrazeUserId","Email","Score"\r\n"c1","Ann","u1","a@x.com","1"\r\n"c2","Bob","u2","","2"\r\n',
      // No header, and a quoted newline in the first record: a piece cut inside it shows no line end yet.
      '"c1","Ann\nline two","u1","a@x.com","1"\r\n"c2","Bob","u2","","2"\r\n',
    ];
    for (const [text, scan] of texts.flatMap(
      (t) =>
        [
          [t, true],
          [t, false],
        ] as const,
    )) {
      const bytes = Buffer.from(text);
      const whole = await read(bytes, [], scan);
      const keys = (await read(bytes, [], scan, undefined, 'keys')).keys;
      expect(whole.lines).toHaveLength(2);
      expect(keys).toHaveLength(2);
      for (let cut = 1; cut < bytes.length; cut++) {
        expect((await read(bytes, [cut], scan)).lines, `cut at ${cut}`).toEqual(whole.lines);
        expect((await read(bytes, [cut], scan, undefined, 'keys')).keys, `keys, cut at ${cut}`).toEqual(keys);
      }
    }
  });

  it('read for its identifiers only, a record is skipped past them to a line end that comes before any quote', () => {
    const records = (text: string) => {
      const seen: { partial: boolean; count: number; fields: string[] }[] = [];
      const scanner = new CsvRecordScanner(',', (r) => {
        const { partial, count } = r;
        r.scanWhole(); // every field, as if the record had been scanned whole
        seen.push({ partial, count, fields: r.fields() });
      });
      scanner.fieldsNeeded = 2;
      scanner.push(Buffer.from(text));
      scanner.end();
      return { seen, unusual: scanner.unusual };
    };
    // A quote after the line end does not stop a skip; one before it does (the fields are scanned);
    // the quote looked for once is looked for again once passed; a record of two fields is whole.
    expect(records('a,b,c,d\ne,f,"g,\nh",i\nj,k,l\nm,n\n')).toEqual({
      seen: [
        { partial: true, count: 2, fields: ['a', 'b', 'c', 'd'] },
        { partial: false, count: 4, fields: ['e', 'f', 'g,\nh', 'i'] },
        { partial: true, count: 2, fields: ['j', 'k', 'l'] },
        { partial: false, count: 2, fields: ['m', 'n'] },
      ],
      unusual: false,
    });
    // CRLF line ends: skipped to the LF after a CR; a bare LF is still what makes the rest Papa Parse's.
    expect(records('a,b,c\r\nd,e,f\r\n')).toEqual({
      seen: [
        { partial: true, count: 2, fields: ['a', 'b', 'c'] },
        { partial: true, count: 2, fields: ['d', 'e', 'f'] },
      ],
      unusual: false,
    });
    expect(records('a,b,c\r\nd,e,f\ng,h,i\r\n')).toEqual({
      seen: [{ partial: true, count: 2, fields: ['a', 'b', 'c'] }],
      unusual: true,
    });
  });

  it('guesses the line end as Papa Parse does, quoted sections left out', () => {
    expect(papaLineEnd('a,b\nc,d\r\n')).toBe('\n');
    expect(papaLineEnd('a,b\r\nc,d\r\ne\n')).toBe('\r\n');
    expect(papaLineEnd('"x\ny",b\r\nc,d\r\n')).toBe('\r\n');
    expect(papaLineEnd('a,b\rc,d\r')).toBe('\r');
  });

  it('scans only single-byte delimiters it can tell from quotes and line ends', () => {
    expect([',', ';', '\t', '|'].every((d) => CsvRecordScanner.canScan(d))).toBe(true);
    expect(['||', '"', '\n', '\r', '¦'].some((d) => CsvRecordScanner.canScan(d))).toBe(false);
  });
});

describe('the CSV scanner, on generated partitions', () => {
  // Values from pieces that matter to CSV and to spill lines: delimiters, quotes, line ends, control
  // and non-Latin characters, a leading j, spaces around identifiers.
  const piece = fc.constantFrom('a', 'j', ' ', ',', '"', '""', '\n', '\r\n', '\r', '\t', '\\', 'é', '李', '😀', '1', 'x@y.io');
  const value = fc.array(piece, { maxLength: 4 }).map((p) => p.join(''));
  // Mostly well-formed; now and then written as it is, quotes and line ends and all (malformed CSV).
  const field = fc
    .tuple(value, fc.constantFrom('plain', 'plain', 'quoted', 'raw'))
    .map(([v, how]) => (how === 'raw' ? v : how === 'quoted' || /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v));
  const record = fc.array(field, { minLength: 4, maxLength: 6 }).map((f) => f.join(','));
  const partition = fc.tuple(
    fc.array(record, { minLength: 1, maxLength: 8 }),
    fc.constantFrom('\n', '\r\n'),
    fc.boolean(),
    fc.array(fc.nat(), { maxLength: 4 }),
  );

  // A record cut by a piece's end is completed from the next piece's first bytes (8 KB; here 1 to 24,
  // so that it ends anywhere in them or past them).
  it('spills what Papa Parse reads, for any partition and any cuts', async () => {
    await fc.assert(
      fc.asyncProperty(partition, fc.integer({ min: 1, max: 24 }), async ([records, lineEnd, header, cutAt], carryBytes) => {
        const text = `${header ? 'CustomerId,Name,BrazeUserId,Email,Score' + lineEnd : ''}${records.join(lineEnd)}${lineEnd}`;
        const bytes = Buffer.from(text);
        const cuts = [...new Set(cutAt.map((c) => c % bytes.length))].filter((c) => c > 0).sort((a, b) => a - b);
        const scanned = await read(bytes, cuts, true, undefined, 'rows', def, false, carryBytes);
        expect({ ...scanned, scannerUsed: undefined, rawTokens: undefined }).toEqual({
          ...(await read(bytes, cuts, false)),
          scannerUsed: undefined,
          rawTokens: undefined,
        });
        await expectKeysAsPapa(bytes, cuts, undefined, carryBytes);
      }),
      { numRuns: 1000 },
    );
  });
});
