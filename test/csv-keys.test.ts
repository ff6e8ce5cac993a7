// The key pass's scanner against Papa Parse (readCsv): the same keys from the same bytes, however the
// bytes are cut into chunks, or `unusual` where it cannot be sure.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CsvKeyScanner } from '../shared/snapshot/csv-keys';
import { isHeaderRecord, readCsv } from '../shared/snapshot/csv-rows';

const COLUMNS = ['CustomerId', 'Name', 'BrazeUserId'];
const options = { delimiter: ',', hasHeader: undefined, columns: COLUMNS };
const keyOf = (id: string, ext: string) => (id.trim() || ext.trim() ? id.trim() || `ext:${ext.trim()}` : null);

/** The keys Papa Parse reads: the profile ID (column 0), else the Braze customer ID (column 2). */
async function papaKeys(text: string): Promise<string[]> {
  const keys: string[] = [];
  let at = { id: 0, ext: 2 };
  await readCsv(Readable.from([text]), options, (ev) => {
    if (ev.kind === 'header') at = { id: ev.columns.indexOf('CustomerId'), ext: ev.columns.indexOf('BrazeUserId') };
    if (ev.kind !== 'row') return;
    const key = keyOf(ev.fields[at.id] ?? '', ev.fields[at.ext] ?? '');
    if (key) keys.push(key);
  });
  return keys;
}

/** The keys the scanner reads with the bytes cut at `cuts`; null when it says the file is unusual. */
function scannedKeys(bytes: Buffer, cuts: number[]): string[] | null {
  const keys: string[] = [];
  const scanner = new CsvKeyScanner(
    ',',
    (fields) => {
      const isHeader = isHeaderRecord(fields, options);
      const names = isHeader ? fields.map((f) => f.trim()) : COLUMNS;
      return { columns: { profileId: names.indexOf('CustomerId'), ext: names.indexOf('BrazeUserId') }, isData: !isHeader };
    },
    (id, ext) => {
      const key = keyOf(id, ext);
      if (key) keys.push(key);
    },
  );
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    // Each chunk in memory of its own, reused afterwards as the ring's would be.
    const chunk = Uint8Array.from(bytes.subarray(from, cut));
    scanner.push(chunk);
    chunk.fill(0x41);
    from = cut;
  }
  scanner.end();
  return scanner.unusual ? null : keys;
}

const everyCut = (bytes: Buffer) => Array.from({ length: bytes.length + 1 }, (_, i) => [i]);

describe('the key scanner', () => {
  const wellFormed: Record<string, string> = {
    'plain rows with a header': 'CustomerId,Name,BrazeUserId\nc1,Ann,u1\nc2,Bob,\n,Cy,u3\n',
    'CRLF line ends, no header, no last newline': 'c1,Ann,u1\r\nc2,Bob,u2\r\nc3,Cy,u3',
    'quoted fields: delimiters, doubled quotes and newlines in them, a quoted key': 'CustomerId,Name,BrazeUserId\n"c1","Ann, ""the"" first\nline two",u1\nc2,"x\r\ny",""\n"c""3",Cy,"u,3"\n',
    'a byte order mark, columns in another order, spaces around keys': '\ufeffBrazeUserId,Name,CustomerId\nu1,Ann, c1 \nu2,Bob,\n',
    'blank lines and non-Latin keys': '\nCustomerId,Name,BrazeUserId\n\nZoë-李,Ann,u1\n\nἈθηνᾶ,Bob,u2\n\n',
    'a quote inside an unquoted field is text': 'c1,Ann "the" first,u1\nc"2,Bob,u2\n',
  };
  for (const [name, text] of Object.entries(wellFormed)) {
    it(`reads the keys Papa Parse reads, cut anywhere: ${name}`, async () => {
      const expected = await papaKeys(text);
      expect(expected.length).toBeGreaterThan(1);
      const bytes = Buffer.from(text);
      for (const cuts of [[], ...everyCut(bytes), [1, 2, 3, 5, 8, 13, 21, 34]]) expect(scannedKeys(bytes, cuts.filter((c) => c <= bytes.length))).toEqual(expected);
    });
  }

  const unusual: Record<string, string> = {
    'text after a closing quote': 'c1,"Ann" x,u1\nc2,Bob,u2\n',
    'an unclosed quote': 'c1,"Ann,u1\nc2,Bob,u2\n',
    'bare CR line ends': 'c1,Ann,u1\rc2,Bob,u2\r',
    'a byte order mark before a quoted field': '\ufeff"CustomerId",Name,BrazeUserId\nc1,Ann,u1\n',
  };
  for (const [name, text] of Object.entries(unusual)) {
    it(`leaves what it might read otherwise to Papa Parse: ${name}`, () => {
      const bytes = Buffer.from(text);
      for (const cuts of [[], [bytes.length >> 1]]) expect(scannedKeys(bytes, cuts)).toBeNull();
    });
  }

  it('a delimiter it does not scan for sends the partition to Papa Parse', () => {
    expect(new CsvKeyScanner('||', () => ({ columns: { profileId: 0, ext: -1 }, isData: true }), () => undefined).unusual).toBe(true);
  });
});
