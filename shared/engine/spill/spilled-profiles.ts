// A bucket's spill lines, indexed by profile in place: typed arrays over the bytes read from the
// spill files, with no string per row or per profile. Most profiles of a change run are decided
// unchanged from their rows' digest and key alone (see BucketStep.prepare), so a string per
// profile, and a Map of them, was most of what the bucket step allocated: it outlived young
// collections and made the engine thread's full collections. Keys and rows are decoded only for
// the profiles that take the full path.
import { addLine, digestAt, digestOf, type DigestSums } from '../hash/rows-digest';
import { findEntry, firstSlot, fnv1a32, FNV_OFFSET, FNV_PRIME, keySlotCount } from '../hash/key-hash';
import type { ByteRange } from './bucket-files';
import { freshMemory, type ReusedMemory } from './reused-memory';

const SEP = 0x1f;
const NEWLINE = 0x0a;
const PLAIN = 0x73; // "s": a key token holding the key as it is (else "j" + JSON)

export class SpilledProfiles {
  /** Profiles, numbered 0..count-1 in the order of their first row. */
  count = 0;
  // Per profile.
  private readonly keyHash: Int32Array;
  /** The key token (marker byte included) runs from keyFrom to keyTo in `bytes`. */
  private readonly keyFrom: Int32Array;
  private readonly keyTo: Int32Array;
  /** 1: the key token is plain ASCII, its bytes are the key's characters. */
  private readonly asciiKey: Uint8Array;
  private readonly firstRow: Int32Array;
  private readonly lastRow: Int32Array;
  private readonly sumA: Int32Array;
  private readonly sumB: Int32Array;
  // Per row.
  private readonly rowStart: Int32Array;
  /** The profile's next row (-1: none). */
  private readonly nextRow: Int32Array;
  /** Open addressing: profile + 1 per slot, 0 = empty. */
  private readonly slots: Int32Array;
  private readonly sums: DigestSums = { a: 0, b: 0 };
  private readonly view: DataView;

  /**
   * `bytes`: spill lines, each ending in a newline; `digestSeed`: see spilledRowTyping; `memory`:
   * where the indexes go (the bucket step's, used again for each bucket: valid until the next).
   */
  constructor(
    readonly bytes: Buffer,
    private readonly digestSeed = 0,
    memory: ReusedMemory = freshMemory(),
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    let rows = 0;
    for (let i = bytes.indexOf(NEWLINE); i !== -1; i = bytes.indexOf(NEWLINE, i + 1)) rows++;
    this.keyHash = memory.ints('profiles.keyHash', rows);
    this.keyFrom = memory.ints('profiles.keyFrom', rows);
    this.keyTo = memory.ints('profiles.keyTo', rows);
    this.asciiKey = memory.bytes('profiles.ascii', rows);
    this.firstRow = memory.ints('profiles.firstRow', rows);
    this.lastRow = memory.ints('profiles.lastRow', rows);
    this.sumA = memory.ints('profiles.sumA', rows);
    this.sumB = memory.ints('profiles.sumB', rows);
    this.rowStart = memory.ints('profiles.rowStart', rows);
    this.nextRow = memory.ints('profiles.nextRow', rows, -1);
    this.slots = memory.ints('profiles.slots', keySlotCount(rows));
    for (let row = 0, start = 0; row < rows; row++) start = this.addRow(row, start) + 1;
  }

  /** Indexes the row starting at `start`; returns where it ends (its newline). */
  private addRow(row: number, start: number): number {
    const b = this.bytes;
    // seg ␟ key ␟ …: the key token is the second.
    let i = start;
    while (b[i] !== SEP) i++;
    const keyFrom = i + 1;
    let hash = FNV_OFFSET | 0;
    let ascii = b[keyFrom] === PLAIN;
    for (i = keyFrom + 1; b[i] !== SEP; i++) {
      const c = b[i]!;
      hash = Math.imul(hash ^ c, FNV_PRIME);
      if (c >= 0x80) ascii = false;
    }
    const keyTo = i;
    // The key's hash is over its characters (as the sync state's is): only an ASCII token's bytes are those.
    if (!ascii) hash = fnv1a32(this.tokenKey(keyFrom, keyTo)) | 0;
    const end = b.indexOf(NEWLINE, keyTo);
    this.rowStart[row] = start;
    const p = this.findOrAdd(hash, keyFrom, keyTo, ascii, row);
    if (this.lastRow[p] !== row) this.nextRow[this.lastRow[p]!] = row;
    this.lastRow[p] = row;
    const sums = this.sums;
    sums.a = this.sumA[p]!;
    sums.b = this.sumB[p]!;
    addLine(sums, b, this.view, start, end);
    this.sumA[p] = sums.a;
    this.sumB[p] = sums.b;
    return end;
  }

  /** The profile of this key token, added (with `row` as its first) if it is new. */
  private findOrAdd(hash: number, keyFrom: number, keyTo: number, ascii: boolean, row: number): number {
    const mask = this.slots.length - 1;
    for (let slot = firstSlot(this.slots, hash); ; slot = (slot + 1) & mask) {
      const taken = this.slots[slot]!;
      if (taken === 0) {
        const p = this.count++;
        this.slots[slot] = p + 1;
        this.keyHash[p] = hash;
        this.keyFrom[p] = keyFrom;
        this.keyTo[p] = keyTo;
        this.asciiKey[p] = ascii ? 1 : 0;
        this.firstRow[p] = row;
        this.lastRow[p] = row;
        this.sumA[p] = this.digestSeed;
        return p;
      }
      const p = taken - 1;
      if (this.keyHash[p] === hash && this.sameToken(p, keyFrom, keyTo)) return p;
    }
  }

  /** Whether profile p's key token is the token from `from` to `to` (a key is always written as the same token). */
  private sameToken(p: number, from: number, to: number): boolean {
    const pFrom = this.keyFrom[p]!;
    if (this.keyTo[p]! - pFrom !== to - from) return false;
    for (let i = 0; i < to - from; i++) if (this.bytes[pFrom + i] !== this.bytes[from + i]) return false;
    return true;
  }

  private tokenKey(from: number, to: number): string {
    const text = this.bytes.toString('utf8', from + 1, to);
    return this.bytes[from] === PLAIN ? text : (JSON.parse(text) as string);
  }

  /** The profile with this key (-1: none). */
  find(key: string): number {
    return findEntry(this.slots, this.keyHash, fnv1a32(key) | 0, (p) => this.keyOf(p) === key);
  }

  keyOf(p: number): string {
    return this.tokenKey(this.keyFrom[p]!, this.keyTo[p]!);
  }

  /**
   * Whether profile p's key is printable ASCII with no tab, its first character neither `[` nor
   * `"`: then `range` is set to its bytes, which any line can hold as they are (a state line's key,
   * the send lines' key), and no string need be made of it.
   */
  plainKey(p: number, range: ByteRange): boolean {
    if (!this.asciiKey[p]) return false;
    const b = this.bytes;
    const from = this.keyFrom[p]! + 1;
    const to = this.keyTo[p]!;
    if (to === from || b[from] === 0x5b || b[from] === 0x22) return false;
    for (let i = from; i < to; i++) if (b[i]! < 0x20 || b[i]! > 0x7e) return false;
    range.bytes = b;
    range.from = from;
    range.to = to;
    return true;
  }

  /** The hash of profile p's key: fnv1a32 over its characters. */
  keyHashOf(p: number): number {
    return this.keyHash[p]!;
  }

  /** Whether profile p's key is the text in bytes [from, to) of `bytes` (UTF-8), compared in place when it is plain ASCII. */
  keyIs(p: number, bytes: Buffer, from: number, to: number): boolean {
    if (!this.asciiKey[p]) return this.keyOf(p) === bytes.toString('utf8', from, to);
    const pFrom = this.keyFrom[p]! + 1;
    if (this.keyTo[p]! - pFrom !== to - from) return false;
    for (let i = 0; i < to - from; i++) if (this.bytes[pFrom + i] !== bytes[from + i]) return false;
    return true;
  }

  /** The digest of profile p's rows (see rows-digest.ts). */
  digest(p: number): string {
    return digestOf(this.sumA[p]!, this.sumB[p]!);
  }

  /** Whether bytes [at, at + DIGEST_CHARS) of `bytes` are digest(p), compared in place (no string per profile). */
  digestAt(p: number, bytes: Uint8Array, at: number): boolean {
    return digestAt(this.sumA[p]!, this.sumB[p]!, bytes, at);
  }

  /**
   * The segments of profile p's rows (ascending, each once) when every row holds the same fields as
   * its first, byte for byte after the segment (one CI profile in several segments, as exports
   * usually are): mapping its first row is then mapping them all. Null when a row differs.
   */
  segmentsIfAlike(p: number): number[] | null {
    const b = this.bytes;
    const first = this.firstRow[p]!;
    const firstFrom = this.afterSegment(first);
    const length = this.rowEnd(first) - firstFrom;
    const segments = [this.segmentAt(first)];
    for (let row = this.nextRow[first]!; row !== -1; row = this.nextRow[row]!) {
      const from = this.afterSegment(row);
      if (this.rowEnd(row) - from !== length || b.compare(b, firstFrom, firstFrom + length, from, from + length) !== 0)
        return null;
      const seg = this.segmentAt(row);
      // Few segments: kept in order by insertion.
      let at = segments.length;
      while (at > 0 && segments[at - 1]! > seg) at--;
      if (segments[at - 1] !== seg) segments.splice(at, 0, seg);
    }
    return segments;
  }

  /** Profile p's first row as spilled. */
  firstRowOf(p: number): string {
    return this.bytes.toString('utf8', this.firstRowStart(p), this.firstRowEnd(p));
  }

  /** Where profile p's first row starts in `bytes`. */
  firstRowStart(p: number): number {
    return this.rowStart[this.firstRow[p]!]!;
  }

  /** Where profile p's first row ends in `bytes` (its newline). */
  firstRowEnd(p: number): number {
    return this.rowEnd(this.firstRow[p]!);
  }

  /** The segment index a row starts with (its first token: ASCII digits). */
  private segmentAt(row: number): number {
    let seg = 0;
    for (let i = this.rowStart[row]!; this.bytes[i] !== SEP; i++) seg = seg * 10 + this.bytes[i]! - 0x30;
    return seg;
  }

  /** Where a row's tokens after its segment start (at the separator). */
  private afterSegment(row: number): number {
    let i = this.rowStart[row]!;
    while (this.bytes[i] !== SEP) i++;
    return i;
  }

  /** Where a row ends (its newline): rows are numbered in the order they lie in the bytes. */
  private rowEnd(row: number): number {
    return row + 1 < this.rowStart.length ? this.rowStart[row + 1]! - 1 : this.bytes.length - 1;
  }

  /** Profile p's rows as spilled, in the order read. */
  rowsOf(p: number): string[] {
    const lines: string[] = [];
    for (let row = this.firstRow[p]!; row !== -1; row = this.nextRow[row]!)
      lines.push(this.bytes.toString('utf8', this.rowStart[row]!, this.rowEnd(row)));
    return lines;
  }
}
