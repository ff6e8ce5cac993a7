// The spill line of a record the CSV scanner read (snapshot/csv-scanner.ts), written from its bytes:
// the same row encodeRow writes from Papa Parse's strings, without a string per field. Its bytes are
// encodeRow's too, but for a quoted field holding a control character (a line feed…) or doubled
// quotes, well-formed UTF-8 with neither 0x1E nor 0x1F in it: that one is a raw token
// (spill-codec.ts), its bytes copied as they are, where escaping them as JSON was the largest single
// cost of reading wide rows; only the profiles whose objects are written escape them. Anything
// off the common path (a key that is not plain ASCII, a row map() would refuse, a field count that
// does not match) is left to the ordinary path, with the record's fields as strings.
import { isUtf8 } from 'node:buffer';
import { PLAIN, QUOTED_DOUBLED, type CsvRecordScanner } from '../../snapshot/csv-scanner';
import { copyBytes } from '../spill/bucket-files';
import { FNV_OFFSET, FNV_PRIME } from '../hash/key-hash';
import { textToken } from '../spill/spill-codec';
import { holdsControl, RAW_LINE_FEED, writeTextBytes, writeWellFormedText } from '../spill/json-bytes';
import type { RowMapper } from '../profile/row-mapper';

const SEP = 0x1f;
const LF = 0x0a;
const J = 0x6a;
const R = 0x72;
const S = 0x73;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MAX_ID_CHARS = 512;
const EXT = [0x65, 0x78, 0x74, 0x3a]; // "ext:"
/** fnv1a32's state after "ext:" (over bytes it is fnv1a32 over the text for the plain ASCII keys read here). */
const EXT_HASH = EXT.reduce((h, c) => Math.imul(h ^ c, FNV_PRIME), FNV_OFFSET);

/** JavaScript's trim() of an ASCII byte. */
const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/**
 * Where a byte value is next in the bytes being scanned, searched natively and remembered: fields
 * are written in order, so each piece of a partition is searched about once, however many fields
 * ask (a line feed is never far: one ends every record).
 */
class NextByte {
  private bytes: Uint8Array | null = null;
  private searchedFrom = 0;
  private at = -1;

  constructor(private readonly value: number) {}

  /** Where the byte is first at or after `from` in `b`, or -1. */
  from(b: Buffer, from: number): number {
    if (b !== this.bytes || from < this.searchedFrom || (this.at !== -1 && this.at < from)) {
      this.bytes = b;
      this.searchedFrom = from;
      this.at = b.indexOf(this.value, from);
    }
    return this.at;
  }

  /** Whether bytes [from, to) of `b` hold it. */
  within(b: Buffer, from: number, to: number): boolean {
    const at = this.from(b, from);
    return at !== -1 && at < to;
  }
}

export class ScannedRowWriter {
  /** The line written by the last write() is bytes[0, length). */
  bytes: Buffer = Buffer.allocUnsafe(64 * 1024);
  length = 0;
  /** A DataView over `bytes`. */
  view: DataView<ArrayBufferLike> = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length);
  /** fnv1a32 of its profile key (as key-hash.ts hashes it). */
  keyHash = 0;
  private keyFrom = 0;
  private keyTo = 0;
  /** The key found is the Braze customer ID, written "ext:" and it. */
  private prefixed = false;

  /** The segment index's digits, the line's first token (a Buffer.write per row cost a tenth of scanning). */
  private readonly segDigits: Buffer;
  private readonly lineFeeds = new NextByte(LF);
  /** The bytes a raw token cannot hold as they are (its line feeds stand as the first). */
  private readonly rawLineFeeds = new NextByte(RAW_LINE_FEED);
  private readonly separators = new NextByte(SEP);

  constructor(segIndex: number) {
    this.segDigits = Buffer.from(String(segIndex), 'latin1');
  }

  /**
   * Finds the record's key and hashes it (into keyHash): the most bytes its spill line can take, or
   * -1 when the record must take the ordinary path instead. writeAt() then writes the line.
   */
  measure(r: CsvRecordScanner, mapper: RowMapper): number {
    if (this.keyHashOf(r, mapper) === null) return -1;
    // At most: the segment, the key as JSON with "ext:", each field as JSON (a control character
    // becomes six bytes) with its marker, and every spill column's separator, the table's column
    // or not (the line is written where only this much room is left). Two spill columns may read one field.
    let need = 16 + 2 * (this.keyTo - this.keyFrom);
    for (const f of mapper.spillAt) need += f >= 0 ? 6 * (r.to[f]! - r.from[f]!) + 4 : 1;
    return need;
  }

  /**
   * Writes the spill line of the record measure() accepted into `out` (`outView` over it) from
   * `at`, where there is room for what measure() said: where a bucket's lines wait to be written,
   * not into a buffer of its own and then copied there. Returns where it ends.
   */
  writeAt(r: CsvRecordScanner, mapper: RowMapper, out: Buffer, outView: DataView<ArrayBufferLike>, at: number): number {
    const own = this.bytes;
    const ownView = this.view;
    this.bytes = out;
    this.view = outView;
    try {
      return this.writeLine(r, mapper, at);
    } finally {
      this.bytes = own;
      this.view = ownView;
    }
  }

  /** Writes the record's spill line into `bytes` (up to `length`); false when the record must take the ordinary path instead. */
  write(r: CsvRecordScanner, mapper: RowMapper): boolean {
    const need = this.measure(r, mapper);
    if (need < 0) return false;
    this.writeMeasured(r, mapper, need);
    return true;
  }

  /** As write(), for a record measure() accepted, with what it said. */
  writeMeasured(r: CsvRecordScanner, mapper: RowMapper, need: number): void {
    if (need > this.bytes.length) {
      this.bytes = Buffer.allocUnsafe(need * 2);
      this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length);
    }
    this.length = this.writeLine(r, mapper, 0);
  }

  private writeLine(r: CsvRecordScanner, mapper: RowMapper, at: number): number {
    const out = this.bytes;
    for (const digit of this.segDigits) out[at++] = digit;
    out[at++] = SEP;
    at = this.keyToken(r.bytes, at, this.prefixed);
    for (const f of mapper.spillAt) {
      out[at++] = SEP;
      if (f >= 0 && r.to[f]! > r.from[f]!) at = this.fieldToken(r, f, at);
    }
    return at;
  }

  /** The fnv1a32 of the record's profile key (also kept in keyHash), or null when the record must take the ordinary path instead. */
  keyHashOf(r: CsvRecordScanner, mapper: RowMapper): number | null {
    const prefixed = this.findKey(r, mapper);
    if (prefixed === null) return null;
    this.prefixed = prefixed;
    let hash = prefixed ? EXT_HASH : FNV_OFFSET;
    const b = r.bytes;
    for (let i = this.keyFrom; i < this.keyTo; i++) hash = Math.imul(hash ^ b[i]!, FNV_PRIME);
    return (this.keyHash = hash >>> 0);
  }

  /**
   * Finds the record's key (into keyFrom/keyTo): the profile ID, else the Braze customer ID (then
   * `prefixed`: the key is "ext:" and it). Null when the record must take the ordinary path: a field
   * count that does not match, no identifier, or one that is not plain ASCII. A partial record
   * (read for its key only: CsvRecordScanner.fieldsNeeded) has its count unknown: its key is taken
   * from the fields that are there, which hold both identifiers.
   */
  private findKey(r: CsvRecordScanner, mapper: RowMapper): boolean | null {
    if (!r.partial && r.count !== mapper.columns.length) return null;
    if (this.identifier(r, mapper.externalIdAt) === null) return null;
    const extFrom = this.keyFrom;
    const extTo = this.keyTo;
    if (this.identifier(r, mapper.profileIdAt) === null) return null;
    if (this.keyTo > this.keyFrom) return false;
    if (extTo === extFrom) return null; // no identifier: refused, with the reason, on the ordinary path
    this.keyFrom = extFrom;
    this.keyTo = extTo;
    return true;
  }

  /**
   * Finds the identifier in field `f` (trimmed, into keyFrom/keyTo; empty when f < 0): false-y
   * null when it is not plain printable ASCII or too long, so the ordinary path decides.
   */
  private identifier(r: CsvRecordScanner, f: number): true | null {
    if (f < 0) {
      this.keyFrom = this.keyTo = 0;
      return true;
    }
    if (r.quoted[f] === QUOTED_DOUBLED) return null;
    const b = r.bytes;
    let from = r.from[f]!;
    let to = r.to[f]!;
    while (from < to && isSpace(b[from]!)) from++;
    while (to > from && isSpace(b[to - 1]!)) to--;
    if (to - from > MAX_ID_CHARS) return null;
    for (let i = from; i < to; i++) {
      const c = b[i]!;
      if (c < 0x20 || c >= 0x7f) return null;
    }
    this.keyFrom = from;
    this.keyTo = to;
    return true;
  }

  /** The key token (`s` + key, or `j` + JSON when it starts with j). */
  private keyToken(b: Buffer, at: number, prefixed: boolean): number {
    const out = this.bytes;
    const first = prefixed ? EXT[0]! : b[this.keyFrom]!;
    const json = first === J;
    if (json) {
      for (let i = this.keyFrom; i < this.keyTo; i++) {
        if (b[i] !== QUOTE && b[i] !== BACKSLASH) continue;
        return this.stringToken(at, this.keyText(b, prefixed));
      }
    }
    out[at++] = json ? J : S;
    if (json) out[at++] = QUOTE;
    if (prefixed) for (const c of EXT) out[at++] = c;
    for (let i = this.keyFrom; i < this.keyTo; i++) out[at++] = b[i]!;
    if (json) out[at++] = QUOTE;
    return at;
  }

  private keyText(b: Buffer, prefixed: boolean): string {
    return (prefixed ? 'ext:' : '') + b.toString('latin1', this.keyFrom, this.keyTo);
  }

  /**
   * A field's token: a quoted one with a control character or doubled quotes raw (where it can be);
   * any other its bytes as they are, unless it needs JSON (checked UTF-8) or undoing doubled quotes.
   */
  private fieldToken(r: CsvRecordScanner, f: number, at: number): number {
    const b = r.bytes;
    const from = r.from[f]!;
    const to = r.to[f]!;
    const doubled = r.quoted[f] === QUOTED_DOUBLED;
    const wellFormed = to <= r.wellFormedTo;
    // Decided over the field's own bytes only, so a partition spills the same however it is cut.
    const looked = !doubled || !wellFormed;
    let control = false;
    if (looked && wellFormed) control = holdsControl(b, r.view, from, to);
    else if (looked) for (let i = from; i < to && !control; i++) control = b[i]! < 0x20;
    if (
      r.quoted[f] !== PLAIN &&
      (doubled || control) &&
      this.rawAllows(b, from, to) &&
      (wellFormed || isUtf8(b.subarray(from, to)))
    )
      return this.rawToken(b, from, to, at);
    if (!looked) control = holdsControl(b, r.view, from, to);
    const json = b[from] === J;
    const out = this.bytes;
    if (!control && !doubled && !json) {
      out[at++] = S;
      return copyBytes(b, from, to, out, at);
    }
    // What encodeRow writes for the field's text (JSON for a control character or a leading j),
    // written from its bytes; the text path only for bytes that are not well-formed UTF-8, so a
    // JSON token is always well-formed (objects written from spill lines rely on it).
    const escape = control || json;
    out[at] = escape ? J : S;
    if (escape) out[at + 1] = QUOTE;
    const start = at + (escape ? 2 : 1);
    const end = wellFormed
      ? writeWellFormedText(b, r.view, from, to, out, this.view, start, escape, doubled)
      : writeTextBytes(b, from, to, out, start, escape, doubled);
    if (end === -1) return this.stringToken(at, r.text(f));
    if (escape) out[end] = QUOTE;
    return escape ? end + 1 : end;
  }

  /** Whether bytes [from, to) of `b` can stand in a raw token: no separator, nothing that stands for a line feed there. */
  private rawAllows(b: Buffer, from: number, to: number): boolean {
    return !this.separators.within(b, from, to) && !this.rawLineFeeds.within(b, from, to);
  }

  /** `r` and the field's bytes as they are in the file, each line feed as RAW_LINE_FEED. */
  private rawToken(b: Buffer, from: number, to: number, at: number): number {
    const out = this.bytes;
    out[at++] = R;
    const end = copyBytes(b, from, to, out, at);
    for (let lf = this.lineFeeds.from(b, from); lf !== -1 && lf < to; lf = this.lineFeeds.from(b, lf + 1))
      out[at + lf - from] = RAW_LINE_FEED;
    return end;
  }

  /** A token written from the text, as encodeRow writes it. */
  private stringToken(at: number, text: string): number {
    return at + this.bytes.write(textToken(text), at);
  }
}
