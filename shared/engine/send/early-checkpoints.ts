// Checkpoints of what was sent early (main thread). Sending early records nothing
// durable until the bucket step, so a worker killed in that phase would have its successor send
// everything again — a second bill for every attribute. Every `everyMs` of sending, and once more
// when reading ends, the state lines of the profiles Braze has taken by then are written to small
// per-bucket blobs beside the sync state; a resumed attempt reads them as the bucket's state (see
// SyncStateStore.readBucket), so it resends at most one interval's worth, or, killed in the bucket
// phase, only the buckets under way.
import type { BucketHeader } from '../state/state-line';
import type { SyncStateStore } from '../state/sync-state';
import { stateLineKey } from '../state/state-line';
import type { BucketFiles } from '../spill/bucket-files';
import type { EarlyMark } from '../thread/protocol';
import type { EarlySender } from './early-sender';

export class EarlyCheckpoints {
  private running: Promise<void> | null = null;
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
    if (this.running || Date.now() - this.last < this.everyMs || !this.early.undeliveredKeys) return;
    this.last = Date.now();
    this.running = this.take()
      .catch(() => undefined) // a checkpoint that could not be written only costs resends
      .finally(() => (this.running = null));
  }

  /** Waits for a checkpoint under way. */
  async settle(): Promise<void> {
    await this.running;
  }

  /** The last checkpoint, once reading is over: everything sent early that Braze took. */
  async final(): Promise<void> {
    await this.settle();
    if (!this.early.undeliveredKeys) return;
    await this.take().catch(() => undefined);
  }

  private async take(): Promise<void> {
    const mark = await this.thread.earlyMark();
    await this.early.answeredBelow(mark.batches);
    const undelivered = this.early.undeliveredKeys;
    if (!undelivered) return;
    const checkpoint = this.taken++;
    for (let bucket = 0; bucket < mark.sizes.length; bucket++) {
      const to = mark.sizes[bucket]!;
      if (to <= this.written[bucket]!) continue;
      const text = await this.stateLines.readRange(bucket, this.written[bucket]!, to);
      let lines = text;
      if (undelivered.size > 0) {
        const kept: string[] = [];
        for (let start = 0, end = text.indexOf('\n'); end !== -1; start = end + 1, end = text.indexOf('\n', start)) {
          if (!undelivered.has(stateLineKey(text, start, end))) kept.push(text.slice(start, end + 1));
        }
        lines = kept.join('');
      }
      if (lines) await this.state.writeEarlyPiece(bucket, checkpoint, this.header, lines);
      this.written[bucket] = to;
    }
  }
}
