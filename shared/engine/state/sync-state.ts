// What Braze was last successfully sent, per profile, per export: compact fingerprints in Blob
// Storage, one blob per hash bucket of profile keys (not a table row per profile). A bucket's blob
// is rewritten only after its sends finish, so it always describes what Braze really has. This is
// the blobs' I/O; the line format is state-line.ts, the in-memory index state-entries.ts.
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import { mapAtMost } from '../../at-most';
import { downloadWhole } from '../../store/blob-bytes';
import { downloadGrant, proxyInEnvironment } from '../../store/blob-grant';
import { statusOf } from '../../store/table-errors';
import { downloadBlob, type DownloadErrors } from '../../store/blob-download';
import { StateTakenOver } from '../control/stop';
import type { BucketHeader } from './state-line';
import { writeWholeTo } from '../spill/bucket-files';
import {
  addRefusals,
  checkpointBlobs,
  isEarlyCheckpoint,
  rangeBytes,
  readCheckpointIndex,
  type CheckpointRange,
  type EarlySource,
  uploadCheckpointBlob,
} from './early-checkpoint-blobs';

const NEWLINE = 0x0a;

/**
 * What Braze refused of a first attempt's profiles sent early, as its checkpoints recorded it (per
 * bucket): a later attempt that settles the bucket counts them rejected with Braze's reason instead
 * of sending them again (see send/early-checkpoints.ts).
 */
export interface EarlyRefusals {
  /** The run that sent them: only that run's later attempts may take its refusals as their own. */
  sentBy: string | undefined;
  /** By profile key: the fingerprint of the object Braze refused, and why. */
  byKey: Map<string, { fp: string; reason: string }>;
}

/** Blob deletes in flight at once (deleteEach). */
const DELETES_AT_ONCE = 16;

/** What a bucket's download throws where there is no blob: downloadBucketBlob says so with null. */
class NoBucketBlob extends Error {}

/** A bucket written by another worker since this one read it (or while it read it). */
const takenOver = (bucket: number) => new StateTakenOver(`the sync state of bucket ${bucket} was written by another worker`);

/** A bucket's download errors: one that changes while it is read was written by another worker. */
const bucketDownloadErrors = (bucket: number): DownloadErrors => ({
  failed: (why) => new Error(`Downloading the sync state of bucket ${bucket} failed: ${why}`),
  gone: () => new NoBucketBlob(),
  changed: () => takenOver(bucket),
});

export interface Manifest {
  version: 1;
  bucketCount: number;
  /** The export settings' fingerprint the state was last written under. */
  definition?: string;
}

export class SyncStateStore {
  /** The checkpoints of what was sent early, by bucket, once a bucket without state asked (read once an attempt). */
  private earlyIndex: Promise<Map<number, EarlySource[]>> | null = null;

  constructor(
    private readonly container: ContainerClient,
    private readonly exportId: string,
  ) {}

  private blob(name: string) {
    return this.container.getBlockBlobClient(`${this.exportId}/${name}`);
  }

  async readManifest(): Promise<Manifest | null> {
    try {
      return JSON.parse((await downloadWhole(this.blob('manifest.json'))).bytes.toString('utf8')) as Manifest;
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
   * its ETag, in one request. Without a blob, the checkpoints of a first attempt that sent early
   * (and was killed) stand in for it: their lines are the profiles Braze took (removed once a run
   * has written every bucket).
   */
  async readBucket(bucket: number): Promise<{ bytes: Uint8Array | null; etag: string | null }> {
    try {
      const { bytes, etag } = await downloadWhole(this.blob(`b${bucket}.tsv`));
      return { bytes, etag: etag ?? null };
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
    }
    const pieces: Uint8Array[] = [];
    const { found } = await this.eachEarlyCheckpoint(bucket, (bytes) => void pieces.push(bytes));
    return { bytes: found ? Buffer.concat(pieces) : null, etag: null };
  }

  /**
   * readBucket into a file (the engine thread reads it): the blob's bytes go from the socket to
   * the file, instead of into memory of their own on the main thread, where every such buffer adds
   * to the external memory that starts V8's full collections. `found` is false when there is no state;
   * `early` is true when it is the checkpoints of what was sent early (no bucket blob yet), and
   * `refused` then holds what Braze refused of it.
   */
  async downloadBucket(
    bucket: number,
    file: string,
  ): Promise<{ found: boolean; etag: string | null; early: boolean; refused: EarlyRefusals | null }> {
    const blob = await this.downloadBucketBlob(bucket, file);
    if (blob) return { found: true, etag: blob.etag, early: false, refused: null };
    // Chunk by chunk from the socket to the file: joined in memory first, a bucket's checkpoints
    // made blocks of a few hundred KB to a few MB on the main thread, once per bucket.
    let handle: FileHandle | null = null;
    let read = false;
    try {
      const { found, refused } = await this.eachEarlyCheckpoint(bucket, async (bytes) => {
        handle ??= await open(file, 'w');
        await writeWholeTo(handle, bytes);
      });
      read = true;
      return { found, etag: null, early: found, refused };
    } finally {
      // After a failed read, the error that stopped it is the one to report, not the close's.
      await (handle as FileHandle | null)?.close().catch((e: unknown) => {
        if (read) throw e;
      });
    }
  }

  /**
   * The bucket's blob into `file` (none made without the blob), through the app's own GET
   * (store/blob-download.ts: no buffer per socket chunk, none of the SDK's work per request), or the
   * SDK's where the environment names a proxy. Its ETag; null where there is no blob.
   */
  private async downloadBucketBlob(bucket: number, file: string): Promise<{ etag: string | null } | null> {
    const blob = this.blob(`b${bucket}.tsv`);
    if (proxyInEnvironment()) {
      try {
        return { etag: (await blob.downloadToFile(file)).etag ?? null };
      } catch (e) {
        if (statusOf(e) === 404) return null;
        throw e;
      }
    }
    const out: { fd: number | null } = { fd: null }; // opened by the first bytes
    try {
      const downloaded = await downloadBlob(await downloadGrant(blob), bucketDownloadErrors(bucket), (bytes) => {
        // Written at once (a few pieces of 256 KB to the page cache): the GET reads into its buffer again next.
        out.fd ??= openSync(file, 'w');
        for (let at = 0; at < bytes.length;) at += writeSync(out.fd, bytes, at);
      });
      if (out.fd === null) writeFileSync(file, ''); // an empty blob (never written so)
      return downloaded;
    } catch (e) {
      if (e instanceof NoBucketBlob) return null;
      throw e;
    } finally {
      if (out.fd !== null) closeSync(out.fd);
    }
  }

  /**
   * The checkpoints of what was sent early, for the bucket, as one state blob: its bytes handed to
   * `write` in order as they are downloaded (the first checkpoint's header serves for all: the
   * others' are left out). Says whether there was any, and what Braze refused.
   */
  private async eachEarlyCheckpoint(
    bucket: number,
    write: (bytes: Uint8Array) => void | Promise<void>,
  ): Promise<{ found: boolean; refused: EarlyRefusals | null }> {
    this.earlyIndex ??= readCheckpointIndex(this.container, this.exportId).catch((e: unknown) => {
      this.earlyIndex = null; // read again when asked again
      throw e;
    });
    let found = false;
    let refused: EarlyRefusals | null = null;
    const refusedBy = (header: BucketHeader) => (refused ??= { sentBy: header.sentBy, byKey: new Map() });
    for (const source of (await this.earlyIndex).get(bucket) ?? []) {
      const blob = this.container.getBlobClient(source.name);
      if (source.kind === 'range') {
        const { header, at, lines } = source;
        if (lines && !found) await write(Buffer.from(`${JSON.stringify(header)}\n`));
        found ||= lines > 0;
        const refusals: Buffer[] = [];
        let left = lines;
        for await (const chunk of rangeBytes(blob, at, lines + source.refused)) {
          if (left > 0) await write(chunk.subarray(0, left));
          if (chunk.length > left) refusals.push(chunk.subarray(Math.max(left, 0)));
          left -= chunk.length;
        }
        if (source.refused) addRefusals(Buffer.concat(refusals).toString('utf8'), refusedBy(header).byKey);
      } else if (source.kind === 'refusals') {
        const piece = (await downloadWhole(blob)).bytes;
        const headerEnd = piece.indexOf(NEWLINE);
        const header = JSON.parse(piece.toString('utf8', 0, headerEnd)) as BucketHeader;
        addRefusals(piece.toString('utf8', headerEnd + 1), refusedBy(header).byKey);
      } else {
        let inHeader = found; // the first piece's header is the blob's; a later piece's is skipped
        found = true;
        for await (const chunk of rangeBytes(blob, 0, undefined)) {
          let from = 0;
          if (inHeader) {
            const end = chunk.indexOf(NEWLINE);
            if (end === -1) continue;
            inHeader = false;
            from = end + 1;
          }
          if (from < chunk.length) await write(chunk.subarray(from));
        }
      }
    }
    return { found, refused };
  }

  /** The blobs of every checkpoint of what was sent early. */
  async earlyCheckpointNames(): Promise<string[]> {
    const names: string[] = [];
    for await (const b of this.container.listBlobsFlat({ prefix: `${this.exportId}/` }))
      if (isEarlyCheckpoint(b.name)) names.push(b.name);
    return names;
  }

  /**
   * Removes every checkpoint of what was sent early (the buckets hold their lines): those `listed`
   * (earlyCheckpointNames, once no more can be written), else those found now.
   */
  async removeEarlyCheckpoints(listed?: readonly string[]): Promise<void> {
    this.earlyIndex = null;
    await this.deleteEach(listed ?? (await this.earlyCheckpointNames()));
  }

  /**
   * A checkpoint of profiles sent early: for each bucket, the state lines of those Braze took and
   * the refusalLine()s of those it refused, read from where `ranges` say (see checkpointBlobs).
   * `written` is told the buckets of each blob once it is written: should a later one fail, the
   * next checkpoint need not write them again.
   */
  async writeEarlyCheckpoint(
    checkpoint: number,
    header: BucketHeader,
    ranges: readonly CheckpointRange[],
    written?: (buckets: readonly number[]) => void,
    sizes: { partBytes?: number; blockBytes?: number } = {},
  ): Promise<void> {
    this.earlyIndex = null;
    for (const part of checkpointBlobs(checkpoint, header, ranges, sizes.partBytes)) {
      await uploadCheckpointBlob(this.blob(part.name), part, sizes.blockBytes);
      written?.(part.buckets);
    }
  }

  /**
   * Replaces the bucket's state: `lines` are pieces of stateLine()s as UTF-8, each line ending in a
   * newline (see StateBytes, stateLinesBytes). Only if the blob is still the one read (`readEtag`;
   * null = there was none): a second worker on the same export must never have its state
   * overwritten by a stale copy, nor overwrite ours.
   */
  async writeBucket(bucket: number, header: BucketHeader, lines: Uint8Array[], readEtag: string | null): Promise<void> {
    const [body, length] = streamOf([Buffer.from(`${JSON.stringify(header)}\n`), ...lines]);
    try {
      await this.blob(`b${bucket}.tsv`).upload(body, length, {
        conditions: readEtag ? { ifMatch: readEtag } : { ifNoneMatch: '*' },
      });
    } catch (e) {
      const status = statusOf(e);
      if (status === 412 || status === 409) throw takenOver(bucket);
      throw e;
    }
  }

  /** Forgets everything (the export was deleted). */
  async clear(): Promise<void> {
    const names: string[] = [];
    for await (const b of this.container.listBlobsFlat({ prefix: `${this.exportId}/` })) names.push(b.name);
    await this.deleteEach(names);
  }

  /**
   * Deletes the blobs, DELETES_AT_ONCE at a time: one request each, with a round trip to Azure
   * Storage each (an export's state is a blob per bucket). One that fails is left: a bucket's
   * checkpoints are read only where it has no state blob, and a later run's listing finds it.
   */
  private async deleteEach(names: readonly string[]): Promise<void> {
    await mapAtMost(names, DELETES_AT_ONCE, (name) => this.container.deleteBlob(name).catch(() => undefined));
  }
}

/**
 * Pieces sent one after another from where they are (shared memory, usually), not copied into one
 * buffer; empty ones left out.
 */
function streamOf(pieces: Uint8Array[]): [() => NodeJS.ReadableStream, number] {
  const nonEmpty = pieces.filter((piece) => piece.length);
  return [() => Readable.from(nonEmpty, { objectMode: false }), nonEmpty.reduce((n, p) => n + p.length, 0)];
}
