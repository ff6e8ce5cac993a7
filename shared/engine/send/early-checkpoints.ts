// Checkpoints of what was sent early (main thread). Sending early records nothing
// durable until the bucket step, so a worker killed in that phase would have its successor send
// everything again — a second bill for every attribute. Every `everyMs` of sending, and once more
// when reading ends, the state lines of the profiles Braze has taken by then are written to small
// per-bucket blobs beside the sync state; a resumed attempt reads them as the bucket's state (see
// SyncStateStore.readBucket), so it resends at most one interval's worth, or, killed in the bucket
// phase, only the buckets under way. What Braze refused goes beside them, with its reason: the
// attempt that settles the bucket counts those rejected (sending them again would have only
// refused objects in a batch, which reads as a request refused as a whole: failed). What Braze
// did not take (failed) is in neither, so a later attempt sends it.
import type { BucketHeader } from '../state/state-line';
import type { EarlyRefusal, SyncStateStore } from '../state/sync-state';
import { parseStateLine, stateLineKey } from '../state/state-line';
import type { BucketFiles } from '../spill/bucket-files';
import type { EarlyMark } from '../thread/protocol';
import type { EarlySender, NotTaken } from './early-sender';

/**
 * The last checkpoint of what was sent early: `marked` once the engine thread has marked what it
 * holds, `written` once it is written (both at once when nothing was sent early).
 */
export interface LastCheckpoint {
  marked: Promise<void>;
  written: Promise<void>;
}

export const NO_CHECKPOINT: LastCheckpoint = { marked: Promise.resolve(), written: Promise.resolve() };

/** Piece blobs written at once by a checkpoint. */
const PIECES_AT_ONCE = 8;

export class EarlyCheckpoints {
  private running: Promise<void> | null = null;
  /** The last checkpoint (final), once asked for. */
  private lastWritten: Promise<void> | null = null;
  /** The mark of the checkpoint under way, until the engine thread answers: it is asked for one at a time. */
  private marking: Promise<unknown> = Promise.resolve();
  private last = Date.now();
  private taken = 0;
  /** Bytes of each bucket's state-line file already in a checkpoint. */
  private readonly written: number[];

  constructor(
    private readonly thread: { earlyMark(): Promise<EarlyMark> },
    private readonly early: EarlySender,
    private readonly state: SyncStateStore,
    /** The state lines of profiles sent early (written by the engine thread). */
    private readonly stateLines: BucketFiles,
    private readonly header: BucketHeader,
    private readonly everyMs: number,
    bucketCount: number,
  ) {
    this.written = new Array<number>(bucketCount).fill(0);
  }

  /** Called as chunks go by: starts a checkpoint when one is due and none is under way. */
  maybeStart(): void {
    if (this.running || Date.now() - this.last < this.everyMs || !this.early.undeliveredByKey) return;
    this.last = Date.now();
    const mark = this.thread.earlyMark();
    this.marking = mark.catch(() => undefined);
    this.running = this.take(mark)
      .catch(() => undefined) // a checkpoint that could not be written only costs resends
      .finally(() => (this.running = null));
  }

  /** Waits for a checkpoint under way, the last one included (it reads the attempt's temp files). */
  async settle(): Promise<void> {
    await this.running;
    await this.lastWritten;
  }

  /**
   * The last checkpoint, once reading is over: everything sent early that Braze took (`written`).
   * Its mark is asked for at once, not after the checkpoint under way is written: `marked` resolves
   * once the engine thread has answered, and no bucket is asked of it before (the thread answers in
   * turn, and a bucket's hand-over may wait for room in the rings as Braze answers).
   */
  final(): LastCheckpoint {
    const mark = this.marking.then(() => this.thread.earlyMark());
    const written = (this.lastWritten = (async () => {
      await this.running;
      if (!this.early.undeliveredByKey) return;
      await this.take(mark).catch(() => undefined);
    })());
    return {
      marked: mark.then(
        () => undefined,
        () => undefined,
      ),
      written,
    };
  }

  private async take(marked: Promise<EarlyMark>): Promise<void> {
    const mark = await marked;
    await this.early.answeredBelow(mark.batches);
    const undelivered = this.early.undeliveredByKey;
    if (!undelivered) return;
    const checkpoint = this.taken++;
    const due = mark.sizes.flatMap((to, bucket) => (to > this.written[bucket]! ? [bucket] : []));
    // A few pieces at a time rather than one after another: a checkpoint writes a piece per bucket.
    // Each writer reads its pieces into memory of its own, used again: a piece of a few hundred KB
    // per bucket and checkpoint, made anew each time, fragmented the main thread's allocator.
    const writeNext = async (): Promise<void> => {
      let memory: Buffer = Buffer.alloc(0);
      for (let bucket = due.shift(); bucket !== undefined; bucket = due.shift()) {
        const from = this.written[bucket]!;
        const to = mark.sizes[bucket]!;
        memory = await this.stateLines.readRange(bucket, from, to, memory);
        const read = memory.subarray(0, to - from);
        // Most checkpoints find every profile taken: the bytes go as they were read.
        const { lines, refused } = undelivered.size ? sortOut(read.toString('utf8'), undelivered) : { lines: read, refused: [] };
        if (lines.length || refused.length) await this.state.writeEarlyPiece(bucket, checkpoint, this.header, lines, refused);
        this.written[bucket] = to;
      }
    };
    // Every writer finishes before the next checkpoint may start: a piece is never written twice.
    const failed = (await Promise.allSettled(Array.from({ length: PIECES_AT_ONCE }, writeNext))).find(
      (o) => o.status === 'rejected',
    );
    if (failed) throw failed.reason;
  }
}

/**
 * The state lines in `text` (every profile in them answered) sorted out: those of profiles Braze
 * took, as text; and those it refused, with its reason. The rest (not delivered) are in neither.
 */
function sortOut(text: string, undelivered: ReadonlyMap<string, NotTaken>): { lines: string; refused: EarlyRefusal[] } {
  if (undelivered.size === 0) return { lines: text, refused: [] };
  const kept: string[] = [];
  const refused: EarlyRefusal[] = [];
  for (let start = 0, end = text.indexOf('\n'); end !== -1; start = end + 1, end = text.indexOf('\n', start)) {
    const key = stateLineKey(text, start, end);
    const outcome = undelivered.get(key);
    if (!outcome) kept.push(text.slice(start, end + 1));
    else if (outcome.status === 'rejected')
      refused.push({ key, fp: parseStateLine(text.slice(start, end))[1].fp, reason: outcome.reason });
  }
  return { lines: kept.join(''), refused };
}
