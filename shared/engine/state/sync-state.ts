// What Braze was last successfully sent, per profile, per export: compact fingerprints in Blob
// Storage, one blob per hash bucket of profile keys (not a table row per profile). A bucket's blob
// is rewritten only after its sends finish, so it always describes what Braze really has.
import crypto from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import { statusOf } from '../../store/table-errors';
import { StateTakenOver } from '../control/stop';
import { findEntry, firstSlot, fnv1a32, FNV_OFFSET, FNV_PRIME, keySlots } from '../hash/key-hash';
import type { SpilledProfiles } from '../spill/spilled-profiles';

export interface StateEntry {
  /** How Braze knows the profile (`e:<external_id>` / `a:<alias_name>`), to address it when it leaves. */
  identity: string;
  /** Fingerprint of the last attributes object Braze accepted (without the nulls that cleared values). */
  fp: string;
  /**
   * Which of the bucket's `fields` Braze holds a value of for this profile, as hex bits (field i =
   * bit i): a value empty in CI now is cleared (sent as null) only if it was set. Absent in lines
   * written before it was kept: every field may be set.
   */
  set?: string;
  /**
   * Digest of the profile's rows as spilled (hash/rows-digest.ts) when Braze took that object:
   * the same rows under the same settings make the same object. Only in lines that have `set`.
   */
  src?: string;
}

/** What the entries of a bucket were written under: the settings, the fields their masks count, the membership names. */
export interface BucketHeader {
  /** Fingerprint of the export settings the entries were computed under. */
  definition: string;
  /** Mapped fields, in mask bit order (email, phone, then the mapped attributes); absent before masks were kept. */
  fields?: string[];
  /** The membership attribute(s) written to each profile, with their format, to withdraw them when they change. */
  membership?: { format: 'list' | 'boolean'; names: string[] };
  /** A checkpoint of what the run `sentBy` sent while reading (see send/early-checkpoints.ts), not a bucket's state yet. */
  sentBy?: string;
}

export interface BucketState extends BucketHeader {
  entries: StateEntries;
}

export interface Manifest {
  version: 1;
  bucketCount: number;
  /** The export settings' fingerprint the state was last written under. */
  definition?: string;
}

/** A fingerprint of a value's JSON (the export settings): 96 bits of SHA-1, in 16 characters. */
export function fingerprint(value: unknown): string {
  return crypto.createHash('sha1').update(JSON.stringify(value)).digest('base64url').slice(0, 16);
}

/** A bucket per ~4 MB of CSV keeps each bucket's merge small, whatever the snapshot's size. */
export function chooseBucketCount(snapshotBytes: number, targetBytes = 4 * 1024 * 1024): number {
  let n = 1;
  while (n < 4096 && n * targetBytes < snapshotBytes) n *= 2;
  return n;
}

/** What has become of a state line in this bucket step (see StateEntries). */
const PRESENT = 0;
const DELETED = 1;
const CLAIMED = 2;
const KEPT = 3;

const NEWLINE = 0x0a;
const TAB = 0x09;
/** The same bytes as a Buffer (no copy). */
const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * A bucket's entries, read in place from the blob's bytes as downloaded (UTF-8): an index of where
 * each line starts, keyed by the key's hash in typed arrays, and a line decoded only when asked
 * for. A change run looks at most lines only to keep them as they are (see `srcIs`,
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

  constructor(blob: Uint8Array = new Uint8Array(0), from = 0) {
    const bytes = (this.bytes = asBuffer(blob));
    let count = 0;
    for (let i = bytes.indexOf(NEWLINE, from); i !== -1; i = bytes.indexOf(NEWLINE, i + 1)) count++;
    count++; // a last line without its newline
    this.lineStart = new Int32Array(count);
    this.lineEnd = new Int32Array(count);
    this.keyEnd = new Int32Array(count);
    this.keyHash = new Int32Array(count);
    this.asciiKey = new Uint8Array(count);
    this.status = new Uint8Array(count);
    this.slots = keySlots(count);
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
   * Whether the line ends in this rows digest (a line with all five fields). Read in place: no
   * decoding for a plain line.
   */
  srcIs(line: number, src: string): boolean {
    const { bytes } = this;
    const keyEnd = this.keyEnd[line]!;
    const end = this.lineEnd[line]!;
    if (keyEnd === -1) return parseStateLine(this.line(line))[1].src === src;
    const from = end - src.length;
    if (from <= keyEnd) return false;
    for (let i = 0; i < src.length; i++) if (bytes[from + i] !== src.charCodeAt(i)) return false;
    // key, identity, fp, set and src: the fourth tab is just before the digest.
    const identityEnd = bytes.indexOf(TAB, keyEnd + 1);
    const fpEnd = identityEnd === -1 ? -1 : bytes.indexOf(TAB, identityEnd + 1);
    return fpEnd !== -1 && fpEnd < from && bytes.indexOf(TAB, fpEnd + 1) === from - 1;
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

/**
 * A bucket's new state lines as UTF-8, each ending in a newline: what the bucket step keeps, built
 * on the engine thread and handed to the main thread through the objects ring (or transferred),
 * to be written before the lines of what Braze took (SyncStateStore.writeBucket).
 */
export class StateBytes {
  private bytes: Buffer;
  private used = 0;

  /** `expected`: about how many bytes the lines will take (the bucket's state before). */
  constructor(expected = 0) {
    this.bytes = Buffer.allocUnsafeSlow(Math.max(64 * 1024, expected + (expected >> 3)));
  }

  /** Lines [from, to) of `source` (without the last one's newline). */
  addLines(source: Uint8Array, from: number, to: number): void {
    this.room(to - from + 1);
    this.bytes.set(source.subarray(from, to), this.used);
    this.used += to - from;
    this.bytes[this.used++] = NEWLINE;
  }

  /** Lines of text (without the last one's newline). */
  addText(text: string): void {
    // A UTF-16 code unit takes at most 3 bytes; long texts (lines kept whole) are measured instead.
    this.room((text.length < 4096 ? 3 * text.length : Buffer.byteLength(text)) + 1);
    this.used += this.bytes.write(text, this.used);
    this.bytes[this.used++] = NEWLINE;
  }

  /** The lines; the builder is spent. Its own memory (not a pool's), so it can be transferred to another thread. */
  take(): Uint8Array {
    return new Uint8Array(this.bytes.buffer, 0, this.used);
  }

  private room(more: number): void {
    if (this.used + more <= this.bytes.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(2 * this.bytes.length, this.used + more));
    this.bytes.copy(grown, 0, 0, this.used);
    this.bytes = grown;
  }
}

/** A state blob's bytes (null = none yet) as its header and entries. */
export function parseBucketState(bytes: Uint8Array | null): BucketState {
  if (bytes === null) return { definition: '', entries: new StateEntries() };
  const firstEnd = bytes.indexOf(NEWLINE);
  const header = JSON.parse(asBuffer(bytes).toString('utf8', 0, firstEnd === -1 ? bytes.length : firstEnd)) as BucketHeader;
  return { ...header, entries: new StateEntries(bytes, firstEnd === -1 ? bytes.length : firstEnd + 1) };
}

/** A stateLine() as its key and entry. */
export function parseStateLine(line: string): [string, StateEntry] {
  if (line.charCodeAt(0) === 0x5b /* [ */) {
    const [key, identity, fp, set, src] = JSON.parse(line) as [string, string, string, string?, string?];
    return [key, set === undefined ? { identity, fp } : src === undefined ? { identity, fp, set } : { identity, fp, set, src }];
  }
  const a = line.indexOf('\t');
  const b = line.indexOf('\t', a + 1);
  const c = line.indexOf('\t', b + 1);
  if (c === -1) return [line.slice(0, a), { identity: line.slice(a + 1, b), fp: line.slice(b + 1) }];
  const d = line.indexOf('\t', c + 1);
  if (d === -1) return [line.slice(0, a), { identity: line.slice(a + 1, b), fp: line.slice(b + 1, c), set: line.slice(c + 1) }];
  return [
    line.slice(0, a),
    { identity: line.slice(a + 1, b), fp: line.slice(b + 1, c), set: line.slice(c + 1, d), src: line.slice(d + 1) },
  ];
}

/** The key of the stateLine() that runs from `start` to `end` in `text`, read in place. */
export function stateLineKey(text: string, start: number, end: number): string {
  return text.charCodeAt(start) === 0x5b
    ? (JSON.parse(text.slice(start, end)) as string[])[0]!
    : text.slice(start, text.indexOf('\t', start));
}

const plain = (v: string) => !/[\t\n\r]/.test(v);

/** One entry of a state blob: key \t identity \t fp [\t set [\t src]]; a JSON array when a value holds a tab, newline or leading "[". */
export function stateLine(key: string, e: StateEntry): string {
  if (plain(key) && plain(e.identity) && key[0] !== '[') {
    return e.set === undefined
      ? `${key}\t${e.identity}\t${e.fp}`
      : e.src === undefined
        ? `${key}\t${e.identity}\t${e.fp}\t${e.set}`
        : `${key}\t${e.identity}\t${e.fp}\t${e.set}\t${e.src}`;
  }
  return JSON.stringify(
    e.set === undefined
      ? [key, e.identity, e.fp]
      : e.src === undefined
        ? [key, e.identity, e.fp, e.set]
        : [key, e.identity, e.fp, e.set, e.src],
  );
}

export class SyncStateStore {
  constructor(
    private readonly container: ContainerClient,
    private readonly exportId: string,
  ) {}

  private blob(name: string) {
    return this.container.getBlockBlobClient(`${this.exportId}/${name}`);
  }

  async readManifest(): Promise<Manifest | null> {
    try {
      return JSON.parse((await this.blob('manifest.json').downloadToBuffer()).toString('utf8')) as Manifest;
    } catch (e) {
      if (statusOf(e) === 404) return null;
      throw e;
    }
  }

  async writeManifest(manifest: Manifest): Promise<void> {
    const text = JSON.stringify(manifest);
    await this.blob('manifest.json').upload(text, Buffer.byteLength(text), {
      blobHTTPHeaders: { blobContentType: 'application/json' },
    });
  }

  /**
   * The bucket's state blob as bytes (parseBucketState reads them; null when there is none) and
   * its ETag, in one request. Without a blob, the checkpoints of a first attempt that sent while
   * reading (and was killed) stand in for it: their lines are the profiles Braze took (removed once
   * a run has written every bucket).
   */
  async readBucket(bucket: number): Promise<{ bytes: Uint8Array | null; etag: string | null }> {
    try {
      const response = await this.blob(`b${bucket}.tsv`).download(0);
      return { bytes: await readAll(response.readableStreamBody!, response.contentLength!), etag: response.etag ?? null };
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
    }
    return { bytes: await this.earlyCheckpointsOf(bucket), etag: null };
  }

  /**
   * readBucket into a file (the engine thread reads it): the blob's bytes go from the socket to
   * the file, instead of into memory of their own on the main thread, where every such buffer adds
   * to the external memory that starts V8's full collections. `found` is false when there is no state.
   */
  async downloadBucket(bucket: number, file: string): Promise<{ found: boolean; etag: string | null }> {
    try {
      const response = await this.blob(`b${bucket}.tsv`).downloadToFile(file);
      return { found: true, etag: response.etag ?? null };
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
    }
    const bytes = await this.earlyCheckpointsOf(bucket);
    if (bytes) await writeFile(file, bytes);
    return { found: bytes !== null, etag: null };
  }

  /** The checkpoints of what was sent while reading, for the bucket, as one state blob (null: none). */
  private async earlyCheckpointsOf(bucket: number): Promise<Uint8Array | null> {
    const pieces: Buffer[] = [];
    for await (const b of this.container.listBlobsFlat({ prefix: `${this.exportId}/b${bucket}.early-` })) {
      const piece = await this.container.getBlobClient(b.name).downloadToBuffer();
      // Each piece starts with the header; the first one's serves for all.
      pieces.push(pieces.length ? piece.subarray(piece.indexOf(NEWLINE) + 1) : piece);
    }
    return pieces.length ? Buffer.concat(pieces) : null;
  }

  /** Removes every checkpoint of what was sent while reading (the buckets hold their lines). */
  async removeEarlyCheckpoints(): Promise<void> {
    for await (const b of this.container.listBlobsFlat({ prefix: `${this.exportId}/b` })) {
      if (b.name.includes('.early-')) await this.container.deleteBlob(b.name).catch(() => undefined);
    }
  }

  /** A checkpoint of profiles sent while reading: the header and their state lines, for the bucket. */
  async writeEarlyPiece(bucket: number, checkpoint: number, header: BucketHeader, lines: string): Promise<void> {
    const body = Buffer.from(`${JSON.stringify(header)}\n${lines}`);
    await this.blob(`b${bucket}.early-${String(checkpoint).padStart(4, '0')}.tsv`).upload(body, body.length);
  }

  /**
   * Replaces the bucket's state: `lines` are stateLine()s, `kept` more of them as bytes (each
   * ending in a newline: StateBytes). Only if the blob is still the one read (`readEtag`; null =
   * there was none): a second worker on the same export must never have its state overwritten by
   * a stale copy, nor overwrite ours.
   */
  async writeBucket(
    bucket: number,
    header: BucketHeader,
    kept: Uint8Array,
    lines: string[],
    readEtag: string | null,
  ): Promise<void> {
    // Sent piece by piece: `kept` is sent from where it is (shared memory, usually), not copied.
    const pieces = [Buffer.from(`${JSON.stringify(header)}\n`), kept, Buffer.from(lines.map((line) => `${line}\n`).join(''))];
    const length = pieces.reduce((n, p) => n + p.length, 0);
    try {
      await this.blob(`b${bucket}.tsv`).upload(() => Readable.from(pieces, { objectMode: false }), length, {
        conditions: readEtag ? { ifMatch: readEtag } : { ifNoneMatch: '*' },
      });
    } catch (e) {
      const status = statusOf(e);
      if (status === 412 || status === 409)
        throw new StateTakenOver(`the sync state of bucket ${bucket} was written by another worker`);
      throw e;
    }
  }

  /** Forgets everything (the export was deleted). */
  async clear(): Promise<void> {
    for await (const b of this.container.listBlobsFlat({ prefix: `${this.exportId}/` })) {
      await this.container.deleteBlob(b.name).catch(() => undefined);
    }
  }
}

/** A download's bytes, read into memory of their own. */
async function readAll(stream: NodeJS.ReadableStream, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let at = 0;
  for await (const chunk of stream) {
    const piece = chunk as Buffer;
    if (at + piece.length > length) throw new Error('a state blob came longer than its Content-Length');
    bytes.set(piece, at);
    at += piece.length;
  }
  if (at !== length) throw new Error('a state blob came shorter than its Content-Length');
  return bytes;
}
