// The main thread's side of the bucket step: the buckets asked of the engine thread, and what it
// hands back for each (through the rings, read in the order it was written).
import { receiveObjects, type ObjectList } from '../thread/object-bytes';
import type { PreparedBucket } from '../thread/protocol';
import { SendLines } from '../thread/send-lines';
import { takeOver, type RingReader } from '../thread/shared-ring';

/**
 * A prepared bucket on the main thread: its objects, and the function that frees them once Braze
 * has answered; the state lines it keeps, and the function that frees them once they are written.
 */
export interface ReceivedBucket {
  prepared: PreparedBucket;
  objects: ObjectList;
  /** Gives the memory of the first `count` objects back, once Braze has answered for them (more may follow). */
  releaseAnswered?: (count: number) => void;
  /** Gives the objects' memory back (once Braze has answered for them all). */
  release: () => void;
  lines: SendLines;
  kept: Uint8Array;
  /** Gives the memory of `lines` and `kept` back (once the bucket's state is written). */
  releaseState: () => void;
}

interface Asked {
  resolve: (p: ReceivedBucket) => void;
  reject: (e: unknown) => void;
}

export class BucketsAsked {
  private readonly asked = new Map<number, Asked>();

  constructor(private readonly rings: { objects: RingReader; state: RingReader }) {}

  /** Buckets asked for and not yet received. */
  get size(): number {
    return this.asked.size;
  }

  /** The bucket, once the engine thread has prepared it (asked of it by the caller). */
  ask(bucket: number): Promise<ReceivedBucket> {
    return new Promise((resolve, reject) => this.asked.set(bucket, { resolve, reject }));
  }

  /** A bucket prepared: to whoever asked for it. */
  received(prepared: PreparedBucket): void {
    // Read at once, in order: the ring gives space back in the order it was written.
    const { toSend } = prepared;
    const { list, releaseAnswered, release } = receiveObjects(this.rings.objects, toSend.objects);
    const lines = SendLines.receive(this.rings.state, toSend.lines, toSend.leaving.length);
    const kept = takeOver(this.rings.state, prepared.kept);
    const releaseState = () => {
      lines.release();
      kept.release();
    };
    const asked = this.asked.get(prepared.bucket);
    this.asked.delete(prepared.bucket);
    if (!asked) {
      release();
      return releaseState();
    }
    asked.resolve({ prepared, objects: list, releaseAnswered, release, lines: lines.lines, kept: kept.bytes, releaseState });
  }

  /** The thread failed: nobody waits for a bucket any more. */
  failAll(e: unknown): void {
    for (const asked of this.asked.values()) asked.reject(e);
    this.asked.clear();
  }
}
