// What Braze was last successfully sent, per profile, per export: compact fingerprints in Blob
// Storage, one blob per hash bucket of profile keys (not a table row per profile). A bucket's blob
// is rewritten only after its sends finish, so it always describes what Braze really has.
import crypto from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { statusOf } from '../../store/table-errors';
import { StateTakenOver } from '../stop';
import { findEntry, firstSlot, fnv1a32, FNV_OFFSET, FNV_PRIME, keySlots } from '../spill/key-hash';
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
   * Digest of the profile's rows as spilled (spill/rows-digest.ts) when Braze took that object:
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
  /** A checkpoint of what the run `sentBy` sent while reading (see early-send/checkpoints.ts), not a bucket's state yet. */
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

/**
 * A bucket's entries, read in place: an index of where each line starts in the blob's text, keyed
 * by the key's hash in typed arrays, and a line parsed only when asked for. A change run looks at
 * most lines only to keep them as they are (see `srcIs`, `keepAsWritten`, `keptText`): parsing a
 * million lines into objects cost more than the rest, and a string per key was most of the rest.
 */
export class StateEntries {
  private readonly lineStart: Int32Array;
  private readonly lineEnd: Int32Array;
  /** Where a plain line's key ends (its first tab); -1 for a line in JSON. */
  private readonly keyEnd: Int32Array;
  private readonly keyHash: Int32Array;
  /** Per line: PRESENT, DELETED, CLAIMED (a spilled profile has the key) or KEPT (claimed, kept as written). */
  private readonly status: Uint8Array;
  /** Open addressing: line + 1 per slot, 0 = empty. */
  private readonly slots: Int32Array;
  private lines = 0;
  private live = 0;

  constructor(private readonly text: string = '', from = 0) {
    let count = 0;
    for (let i = text.indexOf('\n', from); i !== -1; i = text.indexOf('\n', i + 1)) count++;
    count++; // a last line without its newline
    this.lineStart = new Int32Array(count);
    this.lineEnd = new Int32Array(count);
    this.keyEnd = new Int32Array(count);
    this.keyHash = new Int32Array(count);
    this.status = new Uint8Array(count);
    this.slots = keySlots(count);
    for (let start = from, end = text.indexOf('\n', from); start < text.length; start = end + 1, end = text.indexOf('\n', start)) {
      if (end === -1) end = text.length;
      if (end > start) this.add(start, end);
    }
  }

  private add(start: number, end: number): void {
    const { text } = this;
    let hash = FNV_OFFSET | 0;
    let keyEnd = -1;
    if (text.charCodeAt(start) === 0x5b /* [ */) hash = fnv1a32(stateLineKey(text, start, end)) | 0;
    else {
      let i = start;
      for (let c = text.charCodeAt(i); c !== 9 /* \t */; c = text.charCodeAt(++i)) hash = Math.imul(hash ^ c, FNV_PRIME);
      keyEnd = i;
    }
    const mask = this.slots.length - 1;
    let slot = firstSlot(this.slots, hash);
    for (; this.slots[slot] !== 0; slot = (slot + 1) & mask) {
      const line = this.slots[slot]! - 1;
      // The same key twice (never written so, but read as a Map would): the later line wins.
      if (this.keyHash[line] === hash && this.keyAt(line) === stateLineKey(text, start, end)) {
        this.place(line, start, end, keyEnd);
        return;
      }
    }
    const line = this.lines++;
    this.slots[slot] = line + 1;
    this.place(line, start, end, keyEnd);
    this.keyHash[line] = hash;
    this.live++;
  }

  private place(line: number, start: number, end: number, keyEnd: number): void {
    this.lineStart[line] = start;
    this.lineEnd[line] = end;
    this.keyEnd[line] = keyEnd;
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
      const keyEnd = this.keyEnd[line]!;
      const same = keyEnd === -1 ? rows.keyOf(p) === this.keyAt(line) : rows.keyIs(p, this.text, this.lineStart[line]!, keyEnd);
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
   * parsing for a plain line.
   */
  srcIs(line: number, src: string): boolean {
    const { text } = this;
    const keyEnd = this.keyEnd[line]!;
    const end = this.lineEnd[line]!;
    if (keyEnd === -1) return parseStateLine(this.line(line))[1].src === src;
    const from = end - src.length;
    if (!text.startsWith(src, from)) return false;
    // key, identity, fp, set and src: the fourth tab is just before the digest.
    const identityEnd = text.indexOf('\t', keyEnd + 1);
    const fpEnd = identityEnd === -1 ? -1 : text.indexOf('\t', identityEnd + 1);
    return fpEnd !== -1 && fpEnd < from && text.indexOf('\t', fpEnd + 1) === from - 1;
  }

  /** A claimed line goes into the bucket's new state as it is written (see keptText). */
  keepAsWritten(line: number): void {
    this.status[line] = KEPT;
  }

  /**
   * The lines kept as written, joined: runs of them are sliced from the text whole, so a change
   * run's new state costs a few copies instead of a string per line.
   */
  keptText(): string {
    const runs: string[] = [];
    let runFrom = -1;
    let runTo = -1;
    for (let line = 0; line < this.lines; line++) {
      if (this.status[line] !== KEPT) continue;
      const start = this.lineStart[line]!;
      if (start !== runTo + 1) {
        if (runFrom !== -1) runs.push(this.text.slice(runFrom, runTo));
        runFrom = start;
      }
      runTo = this.lineEnd[line]!;
    }
    if (runFrom !== -1) runs.push(this.text.slice(runFrom, runTo));
    return runs.join('\n');
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
    const keyEnd = this.keyEnd[line]!;
    return keyEnd === -1 ? stateLineKey(this.text, this.lineStart[line]!, this.lineEnd[line]!) : this.text.slice(this.lineStart[line]!, keyEnd);
  }

  private line(line: number): string {
    return this.text.slice(this.lineStart[line]!, this.lineEnd[line]!);
  }
}

/** A state blob's text (null = none yet) as its header and entries. */
export function parseBucketState(text: string | null): BucketState {
  if (text === null) return { definition: '', entries: new StateEntries() };
  const firstEnd = text.indexOf('\n');
  const header = JSON.parse(firstEnd === -1 ? text : text.slice(0, firstEnd)) as BucketHeader;
  return { ...header, entries: new StateEntries(text, firstEnd === -1 ? text.length : firstEnd + 1) };
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
  return [line.slice(0, a), { identity: line.slice(a + 1, b), fp: line.slice(b + 1, c), set: line.slice(c + 1, d), src: line.slice(d + 1) }];
}

/** The key of the stateLine() that runs from `start` to `end` in `text`, read in place. */
export function stateLineKey(text: string, start: number, end: number): string {
  return text.charCodeAt(start) === 0x5b ? (JSON.parse(text.slice(start, end)) as string[])[0]! : text.slice(start, text.indexOf('\t', start));
}

const plain = (v: string) => !/[\t\n\r]/.test(v);

/** One entry of a state blob: key \t identity \t fp [\t set [\t src]]; a JSON array when a value holds a tab, newline or leading "[". */
export function stateLine(key: string, e: StateEntry): string {
  if (plain(key) && plain(e.identity) && key[0] !== '[') {
    return e.set === undefined ? `${key}\t${e.identity}\t${e.fp}` : e.src === undefined ? `${key}\t${e.identity}\t${e.fp}\t${e.set}` : `${key}\t${e.identity}\t${e.fp}\t${e.set}\t${e.src}`;
  }
  return JSON.stringify(e.set === undefined ? [key, e.identity, e.fp] : e.src === undefined ? [key, e.identity, e.fp, e.set] : [key, e.identity, e.fp, e.set, e.src]);
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
    await this.blob('manifest.json').upload(text, Buffer.byteLength(text), { blobHTTPHeaders: { blobContentType: 'application/json' } });
  }

  /**
   * The bucket's state blob as text (parseBucketState reads it; null when there is none) and its
   * ETag. Without one, the checkpoints of a first attempt that sent while reading (and was killed)
   * stand in for it: their lines are the profiles Braze took (removed once a run has written every bucket).
   */
  async readBucket(bucket: number): Promise<{ text: string | null; etag: string | null }> {
    try {
      const blob = this.blob(`b${bucket}.tsv`);
      const props = await blob.getProperties();
      const buffer = await blob.downloadToBuffer(0, undefined, { conditions: { ifMatch: props.etag } });
      return { text: buffer.toString('utf8'), etag: props.etag ?? null };
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
    }
    const pieces: string[] = [];
    for await (const b of this.container.listBlobsFlat({ prefix: `${this.exportId}/b${bucket}.early-` })) pieces.push(b.name);
    if (pieces.length === 0) return { text: null, etag: null };
    let text = '';
    for (const name of pieces) {
      const piece = (await this.container.getBlobClient(name).downloadToBuffer()).toString('utf8');
      // Each piece starts with the header; the first one's serves for all.
      text += text ? piece.slice(piece.indexOf('\n') + 1) : piece;
    }
    return { text, etag: null };
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
   * Replaces the bucket's state: `lines` are stateLine()s, `kept` more of them already joined. Only
   * if the blob is still the one read (`readEtag`; null = there was none): a second worker on the
   * same export must never have its state overwritten by a stale copy, nor overwrite ours.
   */
  async writeBucket(bucket: number, header: BucketHeader, kept: string, lines: string[], readEtag: string | null): Promise<void> {
    const parts = [JSON.stringify(header)];
    if (kept) parts.push(kept);
    for (const line of lines) parts.push(line);
    const body = Buffer.from(parts.join('\n') + '\n');
    try {
      await this.blob(`b${bucket}.tsv`).upload(body, body.length, { conditions: readEtag ? { ifMatch: readEtag } : { ifNoneMatch: '*' } });
    } catch (e) {
      const status = statusOf(e);
      if (status === 412 || status === 409) throw new StateTakenOver(`the sync state of bucket ${bucket} was written by another worker`);
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
