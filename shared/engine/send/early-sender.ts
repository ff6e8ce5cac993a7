// The main thread's part of sending early (see offers.ts): sends the batches the engine
// thread hands over, and notes per bucket what Braze did not take.
import type { BrazeClient } from '../../braze/client';
import type { Outcome } from '../../braze/batch';
import { BatchSender } from './batch-sender';
import { objectAt } from '../thread/object-bytes';
import { BucketFiles } from '../spill/bucket-files';
import { SEP, textToken } from '../spill/spill-codec';
import type { EarlyBatch } from '../thread/protocol';
import { UNDELIVERED } from '../early-send/records';

/** What a batch keeps of each profile until Braze answers: little, so it dies young. */
interface InFlight {
  bucket: number;
  key: string;
  /** The batch it came in, to release its bytes once Braze has answered for all of them. */
  batch: { left: number; release: () => void; seq: number };
}

/** What became of an object Braze did not take: refused (`rejected`, with its reason) or not delivered (`failed`). */
export type NotTaken = Exclude<Outcome, { status: 'sent' }>;

/** Profiles Braze did not take, kept in memory for checkpoints up to this many; beyond, checkpoints stop. */
const MAX_UNDELIVERED_KEYS = 100_000;

export class EarlySender {
  private readonly undelivered: BucketFiles;
  private readonly sender: BatchSender<InFlight>;
  private undeliveredCount = 0;
  private batches = 0;
  /** Batches (by sequence number) not fully answered yet. */
  private readonly unanswered = new Set<number>();
  private answeredWaiter: { below: number; resolve: () => void } | null = null;
  /**
   * What Braze did not take, by key: refused (`rejected`, with its reason) or not delivered
   * (`failed`). For checkpoints; null once there were too many to keep.
   */
  undeliveredByKey: Map<string, NotTaken> | null = new Map();

  /** `onAnswered`: after each of Braze's answers (the run's progress: requests sent). */
  constructor(tempDir: string, braze: BrazeClient, maxBatchesUnderWay: number, onAnswered: () => void = () => undefined) {
    this.undelivered = new BucketFiles(tempDir, UNDELIVERED);
    // Its queue is what reading may run ahead of Braze (`maxBatchesUnderWay`: see read-snapshot.ts), waiting for slots too.
    this.sender = new BatchSender(
      braze,
      maxBatchesUnderWay,
      (items, outcomes) => {
        this.recordUndelivered(items, outcomes);
        onAnswered();
      },
      Infinity,
    );
  }

  /** Sends a batch's objects; `release` is called once Braze has answered for all of them. */
  send(batch: EarlyBatch, release: () => void): void {
    const count = batch.buckets.length;
    const seq = this.batches++;
    this.unanswered.add(seq);
    const answered = { left: count, release, seq };
    for (let i = 0; i < count; i++)
      this.sender.add(objectAt(batch.objects, i), { bucket: batch.buckets[i]!, key: batch.keys[i]!, batch: answered });
  }

  /** Backpressure for the reader: null, or a promise to wait for (and ask again) before reading on. */
  room(): Promise<void> | null {
    return this.sender.room();
  }

  /** Whether Braze took every object sent so far. */
  get allDelivered(): boolean {
    return this.undeliveredCount === 0;
  }

  /**
   * Resolves once Braze has answered for every object of the first `batches` batches; rejects once
   * sending failed (a revoked key…): no more answers will come.
   */
  answeredBelow(batches: number): Promise<void> {
    const answered = new Promise<void>((resolve) => {
      this.answeredWaiter = { below: batches, resolve };
      this.wakeAnsweredWaiter();
    });
    return Promise.race([answered, this.sender.failed]);
  }

  private wakeAnsweredWaiter(): void {
    const w = this.answeredWaiter;
    if (!w) return;
    for (const seq of this.unanswered) if (seq < w.below) return;
    this.answeredWaiter = null;
    w.resolve();
  }

  /** Waits for every batch; throws the first sending failure. */
  async finish(): Promise<void> {
    await this.sender.finish();
    this.undelivered.close();
  }

  /** Waits for batches still under way, ignoring failures (the run is stopping anyway). */
  async settle(): Promise<void> {
    await this.sender.finish().catch(() => undefined);
  }

  private recordUndelivered(items: InFlight[], outcomes: Outcome[]): void {
    for (let i = 0; i < items.length; i++) {
      const { batch } = items[i]!;
      if (--batch.left === 0) {
        batch.release();
        this.unanswered.delete(batch.seq);
        this.wakeAnsweredWaiter();
      }
      const outcome = outcomes[i]!;
      if (outcome.status === 'sent') continue;
      this.undeliveredCount++;
      if (this.undeliveredByKey) {
        this.undeliveredByKey.set(items[i]!.key, outcome);
        if (this.undeliveredByKey.size > MAX_UNDELIVERED_KEYS) this.undeliveredByKey = null;
      }
      this.undelivered.write(
        items[i]!.bucket,
        `${outcome.status}${SEP}${textToken(outcome.reason)}${SEP}${textToken(items[i]!.key)}`,
      );
    }
  }
}
