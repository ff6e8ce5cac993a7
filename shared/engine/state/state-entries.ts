// A bucket's state entries, indexed in place over the blob's UTF-8 bytes (the bucket step's view
// of what Braze was last sent for the profiles of one hash bucket).
import { findEntry, firstSlot, fnv1a32, FNV_OFFSET, FNV_PRIME, keySlotCount } from '../hash/key-hash';
import { DIGEST_CHARS } from '../hash/rows-digest';
import { freshMemory, type ReusedMemory } from '../spill/reused-memory';
import type { SpilledProfiles } from '../spill/spilled-profiles';
import type { StateBytes } from './state-bytes';
import { parseStateLine, stateLineKey, type BucketHeader, type StateEntry } from './state-line';

export interface BucketState extends BucketHeader {
  entries: StateEntries;
}

/** What has become of a state line in this bucket step (see StateEntries). */
const PRESENT = 0;
const DELETED = 1;
const CLAIMED = 2;
const KEPT = 3;

const NEWLINE = 0x0a;
const TAB = 0x09;
/** digestFrom's answer for a line written as JSON. */
const JSON_LINE = -2;
/** The same bytes as a Buffer (no copy). */
const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * A bucket's entries, read in place from the blob's bytes as downloaded (UTF-8): an index of where
 * each line starts, keyed by the key's hash in typed arrays, and a line decoded only when asked
 * for. A change run looks at most lines only to keep them as they are (see `rowsDigestOf`,
 * `keepAsWritten`, `writeKept`): parsing a million lines into objects cost more than the rest, a
 * string per key was most of the rest, and the blob as one string was decoded, copied to the
 * engine thread and back, and encoded again.
 */
export class StateEntries {
  private readonly lineStart: Int32Array;
  private readonly lineEnd: Int32Array;
  /** Where a plain line's key ends (its first tab); -1 for a line in JSON. */
  private readonly keyEnd: Int32Array;
  private readonly keyHash: Int32Array;
  /** 1: a plain line whose key is ASCII, so its bytes are the key's characters. */
  private readonly asciiKey: Uint8Array;
  /** Per line: PRESENT, DELETED, CLAIMED (a spilled profile has the key) or KEPT (claimed, kept as written). */
  private readonly status: Uint8Array;
  /** Open addressing: line + 1 per slot, 0 = empty. */
  private readonly slots: Int32Array;
  private lines = 0;
  private live = 0;

  /** The blob's bytes (a view of them, to decode with Buffer's toString). */
  private readonly bytes: Buffer;

  /** `memory`: where the index goes (the bucket step's, used again for each bucket: valid until the next). */
  constructor(blob: Uint8Array = new Uint8Array(0), from = 0, memory: ReusedMemory = freshMemory()) {
    const bytes = (this.bytes = asBuffer(blob));
    let count = 0;
    for (let i = bytes.indexOf(NEWLINE, from); i !== -1; i = bytes.indexOf(NEWLINE, i + 1)) count++;
    count++; // a last line without its newline
    this.lineStart = memory.ints('entries.lineStart', count);
    this.lineEnd = memory.ints('entries.lineEnd', count);
    this.keyEnd = memory.ints('entries.keyEnd', count);
    this.keyHash = memory.ints('entries.keyHash', count);
    this.asciiKey = memory.bytes('entries.ascii', count);
    this.status = memory.bytes('entries.status', count);
    this.slots = memory.ints('entries.slots', keySlotCount(count));
    for (
      let start = from, end = bytes.indexOf(NEWLINE, from);
      start < bytes.length;
      start = end + 1, end = bytes.indexOf(NEWLINE, start)
    ) {
      if (end === -1) end = bytes.length;
      if (end > start) this.add(start, end);
    }
  }

  private add(start: number, end: number): void {
    const { bytes } = this;
    let hash = FNV_OFFSET | 0;
    let keyEnd = -1;
    let ascii = false;
    if (bytes[start] === 0x5b /* [ */) hash = fnv1a32(this.decodedKey(start, end, -1)) | 0;
    else {
      ascii = true;
      let i = start;
      // Up to the first tab (a line written without one, as no release writes it, is all key).
      for (; i < end && bytes[i] !== TAB; i++) {
        const c = bytes[i]!;
        hash = Math.imul(hash ^ c, FNV_PRIME);
        if (c >= 0x80) ascii = false;
      }
      keyEnd = i;
      // The key's hash is over its characters: only an ASCII key's bytes are those.
      if (!ascii) hash = fnv1a32(this.decodedKey(start, end, keyEnd)) | 0;
    }
    const mask = this.slots.length - 1;
    let slot = firstSlot(this.slots, hash);
    for (; this.slots[slot] !== 0; slot = (slot + 1) & mask) {
      const line = this.slots[slot]! - 1;
      // The same key twice (never written so, but read as a Map would): the later line wins.
      if (this.keyHash[line] === hash && this.keyAt(line) === this.decodedKey(start, end, keyEnd)) {
        this.place(line, start, end, keyEnd, ascii);
        return;
      }
    }
    const line = this.lines++;
    this.slots[slot] = line + 1;
    this.place(line, start, end, keyEnd, ascii);
    this.keyHash[line] = hash;
    this.live++;
  }

  private place(line: number, start: number, end: number, keyEnd: number, ascii: boolean): void {
    this.lineStart[line] = start;
    this.lineEnd[line] = end;
    this.keyEnd[line] = keyEnd;
    this.asciiKey[line] = ascii ? 1 : 0;
  }

  /** The line of `key`, whatever its status (-1: none). */
  private lineOf(key: string): number {
    return findEntry(this.slots, this.keyHash, fnv1a32(key) | 0, (line) => this.keyAt(line) === key);
  }

  private present(line: number): boolean {
    return line !== -1 && this.status[line] !== DELETED;
  }

  get size(): number {
    return this.live;
  }

  has(key: string): boolean {
    return this.present(this.lineOf(key));
  }

  delete(key: string): boolean {
    const line = this.lineOf(key);
    if (!this.present(line)) return false;
    this.status[line] = DELETED;
    this.live--;
    return true;
  }

  get(key: string): StateEntry | undefined {
    const line = this.lineOf(key);
    return this.present(line) ? this.entryAt(line) : undefined;
  }

  /**
   * The line of spilled profile p's key (-1: none), compared in place, now claimed: the profile
   * is in the snapshot, so the line is not a leaver (see `unclaimed`).
   */
  claim(rows: SpilledProfiles, p: number): number {
    const hash = rows.keyHashOf(p);
    const mask = this.slots.length - 1;
    for (let slot = firstSlot(this.slots, hash); this.slots[slot] !== 0; slot = (slot + 1) & mask) {
      const line = this.slots[slot]! - 1;
      if (this.keyHash[line] !== hash || this.status[line] === DELETED) continue;
      const same = this.asciiKey[line]
        ? rows.keyIs(p, this.bytes, this.lineStart[line]!, this.keyEnd[line]!)
        : rows.keyOf(p) === this.keyAt(line);
      if (!same) continue;
      this.status[line] = CLAIMED;
      return line;
    }
    return -1;
  }

  entryAt(line: number): StateEntry {
    return parseStateLine(this.line(line))[1];
  }

  /**
   * Whether the line ends in the digest of spilled profile p's rows (a line with all five fields).
   * Read in place for a plain line: no decoding, and no string of the digest (this runs for every
   * profile of a change run).
   */
  rowsDigestOf(line: number, rows: SpilledProfiles, p: number): boolean {
    const from = this.digestFrom(line);
    if (from === JSON_LINE) return parseStateLine(this.line(line))[1].rowsDigest === rows.digest(p);
    return from !== -1 && rows.digestAt(p, this.bytes, from);
  }

  /**
   * Where a plain line's rows digest starts: its last DIGEST_CHARS bytes, after the fourth tab (key,
   * identity, fp, heldFields, rowsDigest); -1 when it has none; JSON_LINE for a line in JSON.
   */
  private digestFrom(line: number): number {
    const keyEnd = this.keyEnd[line]!;
    if (keyEnd === -1) return JSON_LINE;
    const from = this.lineEnd[line]! - DIGEST_CHARS;
    if (from <= keyEnd + 1 || this.bytes[from - 1] !== TAB) return -1;
    // Between the key's tab and the one before the digest: the identity's and the fp's, no other.
    let tabs = 0;
    for (let i = keyEnd + 1; i < from - 1; i++) if (this.bytes[i] === TAB) tabs++;
    return tabs === 2 ? from : -1;
  }

  /** A claimed line goes into the bucket's new state as it is written (see writeKept). */
  keepAsWritten(line: number): void {
    this.status[line] = KEPT;
  }

  /**
   * Adds the lines kept as written to `out`: runs of them are copied from the blob's bytes whole,
   * so a change run's new state costs a few copies instead of a string per line.
   */
  writeKept(out: StateBytes): void {
    let runFrom = -1;
    let runTo = -1;
    for (let line = 0; line < this.lines; line++) {
      if (this.status[line] !== KEPT) continue;
      const start = this.lineStart[line]!;
      if (start !== runTo + 1) {
        if (runFrom !== -1) out.addLines(this.bytes, runFrom, runTo);
        runFrom = start;
      }
      runTo = this.lineEnd[line]!;
    }
    if (runFrom !== -1) out.addLines(this.bytes, runFrom, runTo);
  }

  /** The entries present that no spilled profile claimed: profiles that left. */
  *unclaimed(): IterableIterator<[string, StateEntry]> {
    for (let line = 0; line < this.lines; line++) if (this.status[line] === PRESENT) yield parseStateLine(this.line(line));
  }

  keys(): IterableIterator<string> {
    return this.presentLines((line) => this.keyAt(line));
  }

  [Symbol.iterator](): IterableIterator<[string, StateEntry]> {
    return this.presentLines((line) => parseStateLine(this.line(line)));
  }

  private *presentLines<T>(of: (line: number) => T): IterableIterator<T> {
    for (let line = 0; line < this.lines; line++) if (this.status[line] !== DELETED) yield of(line);
  }

  private keyAt(line: number): string {
    return this.decodedKey(this.lineStart[line]!, this.lineEnd[line]!, this.keyEnd[line]!);
  }

  /** The key of the line [start, end): up to `keyEnd` (its first tab), or, -1, the first item of its JSON. */
  private decodedKey(start: number, end: number, keyEnd: number): string {
    return keyEnd === -1 ? stateLineKey(this.text(start, end), 0, end - start) : this.text(start, keyEnd);
  }

  private line(line: number): string {
    return this.text(this.lineStart[line]!, this.lineEnd[line]!);
  }

  private text(start: number, end: number): string {
    return this.bytes.toString('utf8', start, end);
  }
}

/** A state blob's bytes (null = none yet) as its header and entries (indexed in `memory`). */
export function parseBucketState(bytes: Uint8Array | null, memory: ReusedMemory = freshMemory()): BucketState {
  if (bytes === null) return { definition: '', entries: new StateEntries(undefined, 0, memory) };
  const firstEnd = bytes.indexOf(NEWLINE);
  const header = JSON.parse(asBuffer(bytes).toString('utf8', 0, firstEnd === -1 ? bytes.length : firstEnd)) as BucketHeader;
  return { ...header, entries: new StateEntries(bytes, firstEnd === -1 ? bytes.length : firstEnd + 1, memory) };
}
