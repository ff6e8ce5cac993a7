// The key pass's CSV reader: only two columns of each record (the profile ID and the Braze customer
// ID), scanned straight from the bytes as they arrive. A first run that sends while reading first
// reads the other segments for their keys only, and nothing is sent until it is done: Papa Parse
// made a string of every field of every row there, about four times the time this takes.
// It must never miss a key Papa Parse would have read (a profile would be sent before its other
// rows were merged); seeing one more is harmless (that profile takes the merge path). So it reads
// RFC 4180 as Papa Parse does — quoted fields, doubled quotes, newlines in quotes, CRLF — and at
// anything it might read otherwise (a stray quote, bare CR line ends, a record longer than 1 MB) it
// says `unusual`, and the partition is read for its keys by Papa Parse instead.

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const MAX_RECORD_BYTES = 1024 * 1024;

/** Where the key columns are: decided from the first record (a header, or data read with model.json's columns). */
export interface KeyColumns {
  profileId: number;
  /** -1: the table has no Braze customer ID column. */
  ext: number;
}

export class CsvKeyScanner {
  /** Met something Papa Parse might read otherwise: the partition's keys are to be read by Papa Parse. */
  unusual = false;
  private readonly delimiter: number;
  /** The bytes of a record not yet complete, from the last chunk. */
  private carry: Buffer | null = null;
  private columns: KeyColumns | null = null;

  constructor(
    delimiter: string,
    /** Given every field of the first record: the key columns, and whether that record is data too. */
    private readonly firstRecord: (fields: string[]) => { columns: KeyColumns; isData: boolean },
    private readonly onKey: (profileId: string, ext: string) => void,
  ) {
    this.delimiter = delimiter.length === 1 && delimiter.charCodeAt(0) < 0x80 ? delimiter.charCodeAt(0) : -1;
    if (this.delimiter === -1 || this.delimiter === QUOTE || this.delimiter === LF || this.delimiter === CR) this.unusual = true;
  }

  /** The next bytes of the file (not kept: what must wait for the next chunk is copied). */
  push(chunk: Uint8Array): void {
    if (this.unusual) return;
    const bytes = this.carry ? Buffer.concat([this.carry, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.bareCr(bytes, bytes.length - 1)) this.unusual = true;
    // A byte order mark before a quoted field: Papa Parse would not read that field as quoted.
    if (this.columns === null && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf && bytes[3] === QUOTE) this.unusual = true;
    let at = 0;
    while (!this.unusual && at < bytes.length) {
      const next = this.record(bytes, at, false);
      if (next === -1) break;
      at = next;
    }
    this.carry = this.unusual || at >= bytes.length ? null : Buffer.from(bytes.subarray(at));
    if (this.carry && this.carry.length > MAX_RECORD_BYTES) this.unusual = true;
  }

  /** The file is complete. */
  end(): void {
    if (this.unusual || !this.carry) return;
    if (this.bareCr(this.carry, this.carry.length - 1)) this.unusual = true; // a CR last of all ends the file
    let at = 0;
    while (!this.unusual && at < this.carry.length) at = this.record(this.carry, at, true);
    this.carry = null;
  }

  /**
   * Scans the record that starts at `start`: returns where the next one starts, or -1 when the
   * record goes on past the bytes there are (and more will come).
   */
  private record(b: Buffer, start: number, atEnd: boolean): number {
    const all: string[] | null = this.columns ? null : [];
    let profileId = '';
    let ext = '';
    let i = start;
    for (let field = 0; ; field++) {
      const wanted = all !== null || field === this.columns!.profileId || field === this.columns!.ext;
      let value = '';
      let next: number;
      let recordEnds = false;
      if (i < b.length && b[i] === QUOTE) {
        let q = i + 1;
        let doubled = false;
        for (;;) {
          q = b.indexOf(QUOTE, q);
          if (q === -1 || q + 1 === b.length) {
            if (!atEnd) return -1;
            if (q === -1) return this.giveUp(b); // an unclosed quote
            break;
          }
          if (b[q + 1] !== QUOTE) break;
          doubled = true;
          q += 2;
        }
        if (wanted) {
          value = b.toString('utf8', i + 1, q);
          if (doubled) value = value.replaceAll('""', '"');
        }
        const after = q + 1;
        if (after === b.length) {
          next = after;
          recordEnds = true;
        } else if (b[after] === this.delimiter) next = after + 1;
        else if (b[after] === LF) {
          next = after + 1;
          recordEnds = true;
        } else if (b[after] === CR && after + 1 < b.length && b[after + 1] === LF) {
          next = after + 2;
          recordEnds = true;
        } else if (b[after] === CR && after + 1 === b.length && !atEnd) return -1;
        else return this.giveUp(b); // text after a closing quote
      } else {
        let j = i;
        for (let c = b[j]; j < b.length && c !== this.delimiter && c !== LF; c = b[++j]);
        if (j === b.length && !atEnd) return -1;
        recordEnds = j === b.length || b[j] === LF;
        next = j === b.length ? j : j + 1;
        if (wanted) value = b.toString('utf8', i, recordEnds && j > i && b[j - 1] === CR ? j - 1 : j);
      }
      if (all !== null) all.push(value);
      else if (field === this.columns!.profileId) profileId = value;
      else if (field === this.columns!.ext) ext = value;
      i = next;
      if (recordEnds) break;
    }
    if (all !== null) this.takeFirst(all);
    else if (profileId !== '' || ext !== '') this.onKey(profileId, ext);
    return i;
  }

  private takeFirst(fields: string[]): void {
    // An empty line before the first record is skipped, as Papa Parse does.
    if (fields.length === 1 && fields[0] === '') return;
    const { columns, isData } = this.firstRecord(fields);
    this.columns = columns;
    if (isData) this.onKey(fields[columns.profileId] ?? '', columns.ext >= 0 ? (fields[columns.ext] ?? '') : '');
  }

  /**
   * Whether a CR before `upTo` is not followed by LF: line ends Papa Parse may take for the file's
   * (it guesses them), or a CR in a quoted value; either way, Papa Parse reads this file.
   */
  private bareCr(b: Buffer, upTo: number): boolean {
    for (let i = b.indexOf(CR); i !== -1 && i < upTo; i = b.indexOf(CR, i + 1)) if (b[i + 1] !== LF) return true;
    return false;
  }

  private giveUp(b: Buffer): number {
    this.unusual = true;
    return b.length;
  }
}
