// A CSV partition split into records and fields straight from its bytes, with no string made: the
// reader of a run that spills every row as read (see engine/read/scanned-rows.ts), where Papa Parse
// made a string of every field of every row, and most were never looked at again.
// It must read exactly what readCsv (Papa Parse) reads. So it reads RFC 4180 as Papa Parse does:
// quoted fields, doubled quotes, newlines in quotes, a quote inside an unquoted field as text, and
// the line end Papa Parse guesses from the first chunk (LF or CRLF). At anything it might read
// otherwise (a bare CR line end, text after a closing quote, an unclosed quote, a record longer than
// 1 MB) it stops as `unusual` and keeps the bytes from that record on (`rest`), for Papa Parse to
// read the rest of the partition from there.

import { isUtf8 } from 'node:buffer';

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const MAX_RECORD_BYTES = 1024 * 1024;
/** Bytes of a piece copied after a carried record to complete it (see finishCarried). */
const CARRY_COMPLETION_BYTES = 8 * 1024;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** A field's content is quoted in the file (1), with doubled quotes in it (2), or neither (0). */
export const PLAIN = 0;
export const QUOTED = 1;
export const QUOTED_DOUBLED = 2;

/** How much of the first piece Papa Parse's guess looks at. */
const GUESS_CHARS = 1024 * 1024;

/**
 * Whether the first text of a file shows its line end, so the guess from it is the file's, not the
 * piece's: a line end outside quotes (closed or not yet), and no CR at the very end (an LF may follow it in the next
 * piece, and the guess counts the CRs an LF follows). The readers wait for more of the file until
 * it does (or the guess has all it reads, or the file ends): otherwise the same partition, cut
 * elsewhere, could be read another way.
 */
export function showsLineEnd(text: string): boolean {
  if (text.length >= GUESS_CHARS) return true;
  const unquoted = text.replace(/"([^]*?)"/gm, '');
  const open = unquoted.indexOf('"'); // a quote not closed yet: what follows it is inside
  return !text.endsWith('\r') && /[\r\n]/.test(open === -1 ? unquoted : unquoted.slice(0, open));
}

/**
 * Papa Parse's guess of a file's line end (papaparse.js guessLineEndings), over the text of the
 * first chunk it is given: quoted sections left out, LF if it comes before any CR, CRLF if at least
 * half the CRs are followed by LF, else CR.
 */
export function papaLineEnd(firstChunk: string): '\n' | '\r\n' | '\r' {
  const input = firstChunk.substring(0, GUESS_CHARS).replace(/"([^]*?)"/gm, '');
  const r = input.split('\r');
  const n = input.split('\n');
  if (r.length === 1 || (n.length > 1 && n[0]!.length < r[0]!.length)) return '\n';
  let withN = 0;
  for (const part of r) if (part[0] === '\n') withN++;
  return withN >= r.length / 2 ? '\r\n' : '\r';
}

export class CsvRecordScanner {
  /** Met something Papa Parse might read otherwise: `rest` holds the bytes from that record on. */
  unusual = false;
  rest: Buffer | null = null;
  /** The line end, as Papa Parse guesses it from the first piece: Papa Parse reading on must keep it. */
  lineEnd: '\n' | '\r\n' | '\r' | undefined;
  // The record just scanned (valid during onRecord): its fields' content is bytes[from, to).
  bytes: Buffer = Buffer.alloc(0);
  /** A DataView over `bytes`, for reading them a word at a time. */
  view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  /** bytes[0, wellFormedTo) are well-formed UTF-8 (checked at once for the piece): so is any field that ends there or before. */
  wellFormedTo = 0;
  count = 0;
  /**
   * Fields a reader needs of each record (a partition read for its profile keys only): past them, a
   * record whose line end comes before any quote is skipped to that end in one search, native,
   * rather than field by field. It is then `partial`: `count` fields recorded, the rest not looked
   * at; `scanWhole()` records them. (No quote before the line end: the field scan would find the
   * same end, and nothing it stops at.)
   */
  fieldsNeeded = Infinity;
  /** The record just scanned was skipped to its end past `fieldsNeeded` fields. */
  partial = false;
  from = new Int32Array(64);
  to = new Int32Array(64);
  quoted = new Uint8Array(64);
  private readonly delimiter: number;
  private crlf = false;
  private started = false;
  private bomChecked = false;
  /** Where a record not yet complete waits for the next piece: its first `carried` bytes. */
  private work = Buffer.allocUnsafe(128 * 1024);
  private carried = 0;
  /** The quoted field closingQuote() found holds doubled quotes. */
  private doubled = false;
  /** Where the record just scanned starts in `bytes` (for scanWhole). */
  private recordStart = 0;
  /**
   * In the piece being scanned, the first quote at or after where it was last looked for (the
   * piece's length: none), or -1: not looked for yet. Looked for again only once passed, not per
   * record: in a piece with no quote, one search.
   */
  private quoteAt = -1;

  constructor(
    delimiter: string,
    private readonly onRecord: (scanner: CsvRecordScanner) => void,
    /** Bytes of a piece copied after a carried record to complete it (a test sets a few, to cut records anywhere). */
    private readonly carryCompletionBytes = CARRY_COMPLETION_BYTES,
  ) {
    this.delimiter = delimiter.length === 1 && delimiter.charCodeAt(0) < 0x80 ? delimiter.charCodeAt(0) : -1;
  }

  /** Whether this delimiter can be scanned for at all (else Papa Parse reads the partition). */
  static canScan(delimiter: string): boolean {
    const d = delimiter.length === 1 ? delimiter.charCodeAt(0) : -1;
    return d > 0 && d < 0x80 && d !== QUOTE && d !== LF && d !== CR;
  }

  /** The next bytes of the file (not kept: what must wait for the next chunk is copied). */
  push(chunk: Uint8Array): void {
    if (this.unusual) throw new Error('the scanner stopped: the rest of the partition is for Papa Parse');
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.carried > 0 && this.started && this.bomChecked) {
      bytes = this.finishCarried(bytes);
      if (this.unusual || bytes.length === 0) return;
    } else if (this.carried > 0) bytes = this.keep(bytes, this.carried);
    if (!this.started) {
      // The line end is guessed as Papa Parse guesses it, from the file's first text, once that shows it.
      const text = new TextDecoder('utf-8').decode(bytes, { stream: true });
      if (!showsLineEnd(text)) {
        this.carried = this.keep(bytes, 0).length;
        return;
      }
      if (!this.start(text)) return this.stop(bytes);
    }
    if (!this.bomChecked) {
      // The text decoder readCsv's input goes through drops a byte order mark, even one cut in two.
      if (bytes.length < BOM.length && BOM.subarray(0, bytes.length).equals(bytes)) {
        this.carried = this.keep(bytes, 0).length;
        return;
      }
      this.bomChecked = true;
      if (bytes.subarray(0, BOM.length).equals(BOM)) bytes = bytes.subarray(BOM.length);
    }
    this.scan(bytes, false);
  }

  /** The file is complete. */
  end(): void {
    if (this.unusual || this.carried === 0) return;
    const bytes = this.work.subarray(0, this.carried);
    if (!this.started && !this.start(new TextDecoder('utf-8').decode(bytes))) return this.stop(bytes);
    if (!this.bomChecked && bytes.subarray(0, BOM.length).equals(BOM)) return this.scan(bytes.subarray(BOM.length), true);
    this.scan(bytes, true);
  }

  /** Takes the line end guessed from the file's first text; false when it is a bare CR (Papa Parse reads such a file). */
  private start(firstText: string): boolean {
    this.started = true;
    this.lineEnd = papaLineEnd(firstText);
    this.crlf = this.lineEnd === '\r\n';
    return this.lineEnd !== '\r';
  }

  /**
   * `bytes` appended to the first `from` bytes of the work buffer (the start of a record the last
   * piece did not complete): one buffer, reused, rather than a new one for every piece.
   */
  private keep(bytes: Buffer, from: number): Buffer {
    const total = from + bytes.length;
    if (total > this.work.length) {
      const bigger = Buffer.allocUnsafe(Math.max(total, this.work.length * 2));
      this.work.copy(bigger, 0, 0, from);
      this.work = bigger;
    }
    if (bytes.buffer !== this.work.buffer) bytes.copy(this.work, from);
    else
      this.work.copyWithin(from, bytes.byteOffset - this.work.byteOffset, bytes.byteOffset - this.work.byteOffset + bytes.length);
    return this.work.subarray(0, total);
  }

  /**
   * The record carried from the last piece, completed from the start of `bytes`: only a few KB of
   * them are copied after it, not the whole piece (copying every piece of a wide snapshot cost the
   * engine thread ~4 % of its reading). Returns what is left to scan: the rest of `bytes` where it
   * lies, from the record the copied bytes end in; or, a record longer than those, the record with
   * the rest of the piece after it.
   */
  private finishCarried(bytes: Buffer): Buffer {
    const copied = Math.min(bytes.length, this.carryCompletionBytes);
    this.scan(this.keep(bytes.subarray(0, copied), this.carried), false);
    if (this.unusual) {
      // Papa Parse reads on from the record that stopped the scanner: the rest of this piece follows it.
      this.rest = Buffer.concat([this.rest!, bytes.subarray(copied)]);
      return bytes.subarray(bytes.length);
    }
    if (copied === bytes.length) return bytes.subarray(copied); // nothing left: what is carried waits for the next piece
    // What is carried now starts in `bytes` (the record carried before is complete): scanned where it lies.
    if (this.carried <= copied) {
      const from = copied - this.carried;
      this.carried = 0;
      return bytes.subarray(from);
    }
    return this.keep(bytes.subarray(copied), this.carried);
  }

  private scan(bytes: Buffer, atEnd: boolean): void {
    // Every record complete in the piece ends at its last line end (or, at the end, the piece's).
    const complete = atEnd ? bytes.length : bytes.lastIndexOf(LF) + 1;
    this.wellFormedTo = isUtf8(bytes.subarray(0, complete)) ? complete : 0;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    this.quoteAt = -1;
    let at = 0;
    while (at < bytes.length) {
      const next = this.record(bytes, at, atEnd);
      if (next === -1) break;
      if (this.unusual) return this.stop(bytes.subarray(at));
      at = next;
    }
    this.carried = at < bytes.length ? this.keep(bytes.subarray(at), 0).length : 0;
    if (this.carried > MAX_RECORD_BYTES) this.stop(this.work.subarray(0, this.carried));
  }

  private stop(rest: Buffer): void {
    this.unusual = true;
    this.rest = Buffer.from(rest);
    this.carried = 0;
  }

  /**
   * Scans the record that starts at `start` (and hands it to onRecord): returns where the next one
   * starts, -1 when the record goes on past the bytes there are, or sets `unusual`.
   */
  private record(b: Buffer, start: number, atEnd: boolean): number {
    this.count = 0;
    this.partial = false;
    const next = this.fieldsFrom(b, start, atEnd, this.fieldsNeeded);
    if (next < 0 || this.unusual) return next;
    this.bytes = b;
    this.recordStart = start;
    this.onRecord(this);
    return next;
  }

  /**
   * The fields of the record just scanned past those recorded, when it was `partial`: recorded as a
   * whole record's are (its end is in the bytes, with no quote before it).
   */
  scanWhole(): void {
    if (!this.partial) return;
    this.count = 0;
    this.partial = false;
    this.fieldsFrom(this.bytes, this.recordStart, false, Infinity);
  }

  /**
   * Records the fields of the record that starts at `start`, up to `needed` of them (see
   * fieldsNeeded): returns where the next record starts, -1 when the record goes on past the bytes
   * there are, or sets `unusual`.
   */
  private fieldsFrom(b: Buffer, start: number, atEnd: boolean, needed: number): number {
    const d = this.delimiter;
    const len = b.length;
    let i = start;
    for (;;) {
      let from: number;
      let to: number;
      let kind = PLAIN;
      let next: number;
      let ends = false;
      if (i < len && b[i] === QUOTE) {
        const q = this.closingQuote(b, i, atEnd);
        if (q === -1) return -1;
        if (q === -2) return this.odd(); // an unclosed quote
        kind = this.doubled ? QUOTED_DOUBLED : QUOTED;
        from = i + 1;
        to = q;
        next = this.afterQuote(b, q, atEnd);
        if (next === -1) return -1;
        if (next === -2) return this.odd(); // text after a closing quote
        ends = q + 1 === len || b[q + 1] !== d;
      } else {
        let j = i;
        while (j < len) {
          const c = b[j]!;
          if (c === d || c === LF) break;
          j++;
        }
        if (j === len && !atEnd) return -1;
        from = i;
        to = j;
        if (j === len) {
          next = len;
          ends = true;
        } else {
          next = j + 1;
          if (b[j] === LF) {
            ends = true;
            if (this.crlf) {
              if (j === i || b[j - 1] !== CR) return this.odd(); // a bare LF where lines end in CRLF
              to = j - 1;
            }
          }
        }
      }
      this.addField(from, to, kind);
      i = next;
      if (ends) return i;
      if (this.count === needed) {
        const end = this.lineEndBeforeQuote(b, i);
        if (end === -1 && !atEnd) return -1;
        if (end >= 0) {
          this.partial = true;
          return end + 1;
        }
      }
    }
  }

  /**
   * The record's line end from `i` on when no quote comes before it (in a CRLF file, an LF after a
   * CR): -1 when there is none in the bytes, -2 when the fields must be scanned (a quote first, a
   * bare LF where lines end in CRLF).
   */
  private lineEndBeforeQuote(b: Buffer, i: number): number {
    const lf = b.indexOf(LF, i);
    if (lf === -1) return -1;
    if (this.quoteAt < i) {
      const q = b.indexOf(QUOTE, i);
      this.quoteAt = q === -1 ? b.length : q;
    }
    if (this.quoteAt < lf) return -2;
    return this.crlf && (lf === i || b[lf - 1] !== CR) ? -2 : lf;
  }

  /**
   * Where the quoted field opening at `open` closes: -1 when more bytes are needed, -2 when it
   * never does (an unclosed quote). Whether it holds doubled quotes goes to `doubled`.
   */
  private closingQuote(b: Buffer, open: number, atEnd: boolean): number {
    this.doubled = false;
    for (let q = open + 1; ; q += 2) {
      q = b.indexOf(QUOTE, q);
      if (q === -1 || q + 1 === b.length) {
        if (!atEnd) return -1;
        return q === -1 ? -2 : q;
      }
      if (b[q + 1] !== QUOTE) return q;
      this.doubled = true;
    }
  }

  /**
   * Where the record goes on after a closing quote at `q` (the next field, or the next record):
   * -1 when more bytes are needed, -2 when anything but a delimiter or the line end follows.
   */
  private afterQuote(b: Buffer, q: number, atEnd: boolean): number {
    const after = q + 1;
    if (after === b.length) return after;
    if (b[after] === this.delimiter || (b[after] === LF && !this.crlf)) return after + 1;
    if (b[after] !== CR || !this.crlf) return -2;
    if (after + 1 === b.length) return atEnd ? -2 : -1;
    return b[after + 1] === LF ? after + 2 : -2;
  }

  private addField(from: number, to: number, kind: number): void {
    if (this.count === this.from.length) {
      const grow = <T extends Int32Array | Uint8Array>(a: T): T => {
        const bigger = new (a.constructor as new (n: number) => T)(a.length * 2);
        bigger.set(a);
        return bigger;
      };
      this.from = grow(this.from);
      this.to = grow(this.to);
      this.quoted = grow(this.quoted);
    }
    this.from[this.count] = from;
    this.to[this.count] = to;
    this.quoted[this.count] = kind;
    this.count++;
  }

  private odd(): number {
    this.unusual = true;
    return 0;
  }

  /** Field f of the record just scanned, as text (doubled quotes undone). */
  text(f: number): string {
    const s = this.bytes.toString('utf8', this.from[f]!, this.to[f]!);
    return this.quoted[f] === QUOTED_DOUBLED ? s.replaceAll('""', '"') : s;
  }

  /** Every field of the record just scanned, as text. */
  fields(): string[] {
    return Array.from({ length: this.count }, (_, f) => this.text(f));
  }
}
