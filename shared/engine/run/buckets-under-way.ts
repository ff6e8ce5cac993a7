// How far sending may run ahead of the checkpoints: a worker killed meanwhile sends again the
// buckets under way (sent, not yet checkpointed), so DESIGN's bound on what a kill resends is kept here.

/**
 * Two buckets under way, or more (up to the most) while together they hold few objects, as a
 * change run's buckets do: at most this share of the rows read, well within DESIGN's 5 %. Held to
 * two, a change run's sending was a chain of state writes, each bucket waiting on the one before
 * last to be written.
 */
const BUCKETS_UNDER_WAY = 2;
const MOST_BUCKETS_UNDER_WAY = 8;
const SHARE_OF_ROWS_UNDER_WAY = 0.01;

interface UnderWay {
  objects: number;
  checkpointed: Promise<void>;
  done: boolean;
}

export class BucketsUnderWay {
  /** In the order sent: their checkpoints complete in that order. */
  private readonly buckets: UnderWay[] = [];
  /** Objects the buckets under way may hold for more than BUCKETS_UNDER_WAY of them. */
  private readonly fewObjects: number;

  constructor(rowsRead: number) {
    this.fewObjects = Math.floor(rowsRead * SHARE_OF_ROWS_UNDER_WAY);
  }

  /**
   * Waits until a bucket of `objects` may go under way beside those that are (the oldest
   * checkpoint first; one that failed throws here, and the run with it). True when the buckets
   * under way, this one with them, hold few objects.
   */
  async room(objects: number): Promise<boolean> {
    for (;;) {
      while (this.buckets[0]?.done) this.buckets.shift();
      const held = this.buckets.reduce((sum, b) => sum + b.objects, objects);
      const few = held <= this.fewObjects;
      if (this.buckets.length < (few ? MOST_BUCKETS_UNDER_WAY : BUCKETS_UNDER_WAY)) return few;
      await this.buckets[0]!.checkpointed;
    }
  }

  /** A bucket of `objects` went under way; `checkpointed` settles once its state and the run's record are written. */
  add(objects: number, checkpointed: Promise<void>): void {
    const bucket: UnderWay = { objects, checkpointed, done: false };
    checkpointed.then(() => (bucket.done = true)).catch(() => undefined);
    this.buckets.push(bucket);
  }
}
