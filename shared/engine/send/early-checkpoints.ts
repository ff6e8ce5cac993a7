// Checkpoints of what was sent early (main thread). Sending early records nothing
// durable until the bucket step, so a worker killed in that phase would have its successor send
// everything again — a second bill for every attribute. Every `everyMs` of sending, and once more
// when reading ends, the state lines of the profiles Braze has taken by then are written to a blob
// beside the sync state (state/early-checkpoint-blobs.ts); a resumed attempt reads its bucket's
// part as the bucket's state (see SyncStateStore.readBucket), so it resends at most one interval's
// worth, or, killed in the bucket phase, only the buckets under way. What Braze refused goes in the
// same blob, with its reason: the attempt that settles the bucket counts those rejected (sending
// them again would have only refused objects in a batch, which reads as a request refused as a
// whole: failed). What Braze did not take (failed) is in neither, so a later attempt sends it.
import { open, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { BucketHeader } from '../state/state-line';
import type { SyncStateStore } from '../state/sync-state';
import { refusalLine, type CheckpointRange, type EarlyRefusal } from '../state/early-checkpoint-blobs';
import { parseStateLine, stateLineKey } from '../state/state-line';
import { BucketFiles, bucketFile, writeWholeTo } from '../spill/bucket-files';
import { STATE_LINES } from '../early-send/records';
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
  /** The state lines of profiles sent early (written by the engine thread). */
  private readonly stateLines: BucketFiles;

  constructor(
    private readonly thread: { earlyMark(): Promise<EarlyMark> },
    private readonly early: EarlySender,
    private readonly state: SyncStateStore,
    /** The attempt's temp folder, where the engine thread writes the state lines of profiles sent early. */
    private readonly tempDir: string,
    private readonly header: BucketHeader,
    private readonly everyMs: number,
    bucketCount: number,
  ) {
    this.written = new Array<number>(bucketCount).fill(0);
    this.stateLines = new BucketFiles(tempDir, STATE_LINES);
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
    if (!due.length) return;
    // Most checkpoints find every profile taken: the bytes go from the state-line files as they are.
    const staged = undelivered.size ? path.join(this.tempDir, `early-checkpoint-${checkpoint}.tsv`) : null;
    try {
      const ranges = staged ? await this.sortedOut(due, mark.sizes, undelivered, staged) : this.asWritten(due, mark.sizes);
      await this.state.writeEarlyCheckpoint(checkpoint, this.header, ranges, (buckets) => {
        for (const bucket of buckets) this.written[bucket] = mark.sizes[bucket]!;
      });
    } finally {
      if (staged) await unlink(staged).catch(() => undefined);
    }
    for (const bucket of due) this.written[bucket] = mark.sizes[bucket]!; // those with nothing to write too
  }

  /** The due buckets' new state lines, where the engine thread wrote them. */
  private asWritten(due: readonly number[], sizes: readonly number[]): CheckpointRange[] {
    return due.map((bucket) => {
      const from = this.written[bucket]!;
      return { bucket, file: bucketFile(this.tempDir, bucket, STATE_LINES), from, lines: sizes[bucket]! - from, refused: 0 };
    });
  }

  /**
   * The due buckets' new state lines sorted out (sortOut), into `file`: where each bucket's taken
   * lines and refusals are in it.
   */
  private async sortedOut(
    due: readonly number[],
    sizes: readonly number[],
    undelivered: ReadonlyMap<string, NotTaken>,
    file: string,
  ): Promise<CheckpointRange[]> {
    const ranges: CheckpointRange[] = [];
    const out = await open(file, 'w');
    try {
      let memory: Buffer = Buffer.alloc(0);
      let at = 0;
      for (const bucket of due) {
        const from = this.written[bucket]!;
        memory = await this.stateLines.readRange(bucket, from, sizes[bucket]!, memory);
        const { lines, refused } = sortOut(memory.toString('utf8', 0, sizes[bucket]! - from), undelivered);
        const taken = Buffer.from(lines);
        const refusals = Buffer.from(refused.map(refusalLine).join(''));
        // A bucket none of whose new profiles Braze answered for good has no part in the checkpoint.
        if (taken.length + refusals.length === 0) continue;
        ranges.push({ bucket, file, from: at, lines: taken.length, refused: refusals.length });
        await writeWholeTo(out, taken);
        await writeWholeTo(out, refusals);
        at += taken.length + refusals.length;
      }
    } finally {
      await out.close();
    }
    return ranges;
  }
}

/**
 * The state lines in `text` (every profile in them answered) sorted out: those of profiles Braze
 * took, as text; and those it refused, with its reason. The rest (not delivered) are in neither.
 */
function sortOut(text: string, undelivered: ReadonlyMap<string, NotTaken>): { lines: string; refused: EarlyRefusal[] } {
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
