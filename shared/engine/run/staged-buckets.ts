// Prepared buckets set aside on the run's temp disk while the guard weighs a run as it goes
// (EngineInput.weigh): every bucket is merged and diffed once, and what it would send and keep is
// written here instead of being prepared a second time after a dry run. Taken back one by one to
// be sent once the guard lets the run go. A bucket's spill goes once it is set aside
// (BucketPipeline.weigh): the disk holds the rows of the buckets not yet set aside, and the state
// and changed objects of those that were (fits() keeps the spill's headroom free).
import { rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readFileIntoSync } from '../spill/bucket-files';
import { freeBytes, SPILL_HEADROOM_BYTES } from '../spill/run-temp-dir';
import type { EarlyRefusals } from '../state/sync-state';
import { NOTHING } from '../thread/shared-ring';
import { SendLines } from '../thread/send-lines';
import type { PreparedBucket } from '../thread/protocol';
import type { ReceivedBucket } from './buckets-asked';

/**
 * A prepared bucket and how its state was read: the blob's ETag (null: no blob), whether it was the
 * checkpoints of what was sent early, and what Braze refused of those.
 */
export type Prepared = ReceivedBucket & { etag: string | null; early: boolean; refused: EarlyRefusals | null };

/** What a staged file says of its bytes, before them. */
interface StagedHeader {
  prepared: PreparedBucket;
  ends: number[];
  /** Byte lengths, in file order: objects, sent lines, lines before, keys, kept lines. */
  sizes: [number, number, number, number, number];
  etag: string | null;
  early: boolean;
  refused: { sentBy: string | undefined; byKey: [string, { fp: string; reason: string }][] } | null;
}

/** Memory kept to read buckets back into: about as many as are under way at once. */
const SPARE_MEMORY = 12;

/** A prepared bucket's bytes, in file order (StagedHeader.sizes). */
const bytesOf = (p: Prepared): Uint8Array[] => [p.objects.bytes, ...p.lines.columns, p.kept];

export class StagedBuckets {
  /**
   * Memory that buckets taken back were read into, theirs no more: the next ones are read into it.
   * A fresh buffer a bucket (a few hundred KB to a few MB) counted as external memory on the main
   * thread until a collection, and brought its next full mark-compact nearer. Never freed at once
   * (freeNow): a state write Azure answers early (412) can leave its request reading on from the
   * bucket's bytes, which must stay memory, if no longer the bucket's.
   */
  private readonly spare: ArrayBuffer[] = [];

  constructor(private readonly dir: string) {}

  private file(bucket: number): string {
    return path.join(this.dir, `staged-${bucket}.bin`);
  }

  /** Whether the temp disk has room for the bucket beside the headroom the spill keeps (true when that cannot be told). */
  fits(p: Prepared, free = freeBytes(this.dir)): boolean {
    const bytes = bytesOf(p).reduce((n, b) => n + b.length, 0);
    return free === null || bytes + SPILL_HEADROOM_BYTES <= free;
  }

  /**
   * Writes the bucket to disk and gives its shared memory back to the engine thread; false when
   * the disk filled up meanwhile (another run on the instance: fits() said there was room).
   */
  async put(p: Prepared): Promise<boolean> {
    const bytes = bytesOf(p);
    const { toSend } = p.prepared;
    const header: StagedHeader = {
      // The handed bytes were read already (and may be a buffer of their own): not part of the header.
      prepared: {
        ...p.prepared,
        toSend: { ...toSend, objects: { ...NOTHING, ends: [] }, lines: { sent: NOTHING, before: NOTHING, keys: NOTHING } },
        kept: NOTHING,
      },
      ends: p.objects.ends,
      sizes: bytes.map((b) => b.length) as StagedHeader['sizes'],
      etag: p.etag,
      early: p.early,
      refused: p.refused && { sentBy: p.refused.sentBy, byKey: [...p.refused.byKey] },
    };
    const head = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(4);
    length.writeUInt32LE(head.length);
    try {
      await writeFile(this.file(p.prepared.bucket), [length, head, ...bytes]);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      await rm(this.file(p.prepared.bucket), { force: true });
      return false;
    } finally {
      p.release();
      p.releaseState();
    }
  }

  /**
   * The bucket as it was set aside; its file goes. Its bytes are this thread's memory until both
   * release calls (its objects answered, its state written), then spare memory for the next. Read
   * at once, not through libuv's pool: written during the weighing, the file is in the page cache,
   * and while the buckets go, the main thread is what paces them (each step through the pool
   * waited for a turn of its busy event loop). Removed through the pool: nothing waits for that.
   */
  async take(bucket: number): Promise<Prepared> {
    const file = this.file(bucket);
    const bytes = readFileIntoSync(file, (size) => this.memoryFor(size));
    void unlink(file).catch(() => undefined); // left behind, it goes with the attempt's folder
    const [release, releaseState] = this.releasedTwice(bytes);
    const headLength = bytes.readUInt32LE(0);
    const header = JSON.parse(bytes.toString('utf8', 4, 4 + headLength)) as StagedHeader;
    let at = 4 + headLength;
    const [objects, sent, before, keys, kept] = header.sizes.map((size) => bytes.subarray(at, (at += size)));
    const prepared = header.prepared;
    return {
      prepared,
      objects: { bytes: objects!, ends: header.ends },
      release,
      lines: SendLines.of([sent!, before!, keys!], prepared.toSend.leaving.length),
      kept: kept!,
      releaseState,
      etag: header.etag,
      early: header.early,
      refused: header.refused && { sentBy: header.refused.sentBy, byKey: new Map(header.refused.byKey) },
    };
  }

  /** `size` bytes of spare memory (the smallest block that fits), or of new memory: a view from its start. */
  private memoryFor(size: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.spare.length; i++) {
      const length = this.spare[i]!.byteLength;
      if (length >= size && (best === -1 || length < this.spare[best]!.byteLength)) best = i;
    }
    return best === -1 ? Buffer.allocUnsafeSlow(size) : Buffer.from(this.spare.splice(best, 1)[0]!, 0, size);
  }

  /** The two release calls of a bucket taken back: after both, the memory under `bytes` is spare (once). */
  private releasedTwice(bytes: Buffer): [() => void, () => void] {
    const memory = bytes.buffer as ArrayBuffer; // the whole block: memoryFor's views start at its start
    let left = 2;
    const once = () => {
      let called = false;
      return () => {
        if (called) return;
        called = true;
        if (--left === 0 && this.spare.length < SPARE_MEMORY) this.spare.push(memory);
      };
    };
    return [once(), once()];
  }
}
