// How far sending may run ahead of the checkpoints: a worker killed meanwhile sends again the
// buckets under way (sent, their state not yet written), so DESIGN's bound on what a kill resends
// is kept here.
import { MAX_OBJECTS_PER_REQUEST } from '../../braze/batch';

/**
 * Three buckets under way, or more (up to the most) while together they hold few objects, as a
 * change run's buckets do: at most 100 requests' worth (0.1 s of sending at Braze's default limit),
 * and at most this share of the rows read over the segments exported, which is at most that share
 * of the profiles (a profile has a row in each of its segments): well within DESIGN's 5 % even when
 * a profile's change of identity sends two objects. A first run's buckets, thousands of objects
 * each, go three at a time (two where three would hold more than half of what DESIGN lets a kill
 * resend: a slow budget): a bucket waits for the state of the one three before it, which waits
 * for Braze's last answer to it and a write. Held to two, a bucket of a wide 1 M first run
 * (~107 ms of sending) waited for those at every bucket once a round trip took ~100 ms: 18.6–19.1 s
 * against 16.7 s with three (one core: docs/performance.md). A change run's sending was a chain of
 * state writes.
 */
export const BUCKETS_UNDER_WAY = 3;
const MOST_BUCKETS_UNDER_WAY = 8;
/**
 * Buckets whose state is written may wait for the run row that lists them done, this many beyond
 * those under way: enough that a slow run-row write holds no bucket up. A successor prepares such a
 * bucket again and finds its state written by this run: it sends nothing of it and takes the
 * bucket's counts from beside that state (BucketOutcome).
 */
export const RECORDS_BEHIND = 2;
const MOST_OBJECTS_UNDER_WAY = 100 * MAX_OBJECTS_PER_REQUEST;
const SHARE_UNDER_WAY = 0.01;

interface UnderWay {
  objects: number;
  written: Promise<void>;
  done: boolean;
}

interface Unrecorded {
  recorded: Promise<void>;
  done: boolean;
}

/** Seconds of sending a kill may cost (DESIGN: 5 % of the profiles or 30 s, whichever is larger), half of them used. */
const RESEND_SECONDS = 15;

export class BucketsUnderWay {
  /** In the order sent (a bucket leaves once it and every one before it are done). */
  private readonly buckets: UnderWay[] = [];
  /** Buckets sent whose run-row write has not come yet, in order (those writes complete in order). */
  private readonly unrecorded: Unrecorded[] = [];
  /** Objects the buckets under way may hold for more than BUCKETS_UNDER_WAY of them. */
  private readonly fewObjects: number;
  /** Objects the buckets under way may hold for more than two of them: half of DESIGN's bound on what a kill resends. */
  private readonly resendObjects: number;
  /** A state or record write that failed: no more buckets go (the run stops on it). */
  private failure: { error: unknown } | null = null;

  /** `requestsPerSecond`: the pace the run's budget sends at. */
  constructor(rowsRead: number, segments: number, requestsPerSecond: number) {
    const profiles = rowsRead / Math.max(1, segments); // at least this many
    this.fewObjects = Math.min(MOST_OBJECTS_UNDER_WAY, Math.floor(profiles * SHARE_UNDER_WAY));
    this.resendObjects = Math.max(0.025 * profiles, RESEND_SECONDS * requestsPerSecond * MAX_OBJECTS_PER_REQUEST);
  }

  /**
   * Waits until a bucket of `objects` may go under way beside those that are (the oldest one's
   * state written first). Throws once any state or record write failed, and the run stops with it,
   * before more is sent. True when the buckets under way, this one with them, hold few objects.
   */
  async room(objects: number): Promise<boolean> {
    for (;;) {
      if (this.failure) throw this.failure.error;
      while (this.buckets[0]?.done) this.buckets.shift();
      while (this.unrecorded[0]?.done) this.unrecorded.shift();
      const held = this.buckets.reduce((sum, b) => sum + b.objects, objects);
      const few = held <= this.fewObjects;
      // A slow budget keeps large buckets to two: three would take longer than a kill may resend.
      const most = few ? MOST_BUCKETS_UNDER_WAY : held <= this.resendObjects ? BUCKETS_UNDER_WAY : 2;
      if (this.buckets.length >= most) await this.buckets[0]!.written;
      else if (this.unrecorded.length >= most + RECORDS_BEHIND) await this.unrecorded[0]!.recorded;
      else return few;
    }
  }

  /**
   * A bucket of `objects` went under way: `written` settles once its state is written, `recorded`
   * once the run row lists it (and every bucket before it) done. Either failing stops the run.
   */
  add(objects: number, written: Promise<void>, recorded: Promise<void> = written): void {
    const failed = (e: unknown) => (this.failure ??= { error: e });
    const bucket: UnderWay = { objects, written, done: false };
    written.then(() => (bucket.done = true), failed);
    this.buckets.push(bucket);
    const record: Unrecorded = { recorded, done: false };
    recorded.then(() => (record.done = true), failed);
    this.unrecorded.push(record);
  }
}
