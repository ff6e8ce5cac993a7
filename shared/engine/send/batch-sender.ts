// Where batches are sent: attributes objects go in one at a time, leave in batches of ≤ 75 with a
// bounded number of batches under way (the connection's request budget paces them), and each
// batch's outcomes come back to the caller with the items they belong to.
import type { BrazeClient } from '../../braze/client';
import { MAX_OBJECTS_PER_REQUEST, type BrazeObjectJson, type Outcome } from '../../braze/batch';

/**
 * Batches waiting for their slot in the request budget, by default, beyond which a sender adds no
 * more (about: each answer lets it add until the count is back here), whatever may be in flight:
 * the budget sets the pace, and a longer queue before it only holds objects (and their room in the
 * engine's rings) longer.
 */
const BATCHES_WAITING = 48;

export class BatchSender<T> {
  private json: BrazeObjectJson[] = [];
  private items: T[] = [];
  private readonly underWay = new Set<Promise<void>>();
  private failure: unknown = null;
  private readonly waitingForRoom: (() => void)[] = [];
  private fail!: (e: unknown) => void;
  /** Rejects with the first sending failure (e.g. a revoked key): a batch that failed has no outcomes. */
  readonly failed: Promise<never> = new Promise<never>((_, reject) => (this.fail = reject));

  constructor(
    private readonly braze: BrazeClient,
    private readonly maxBatchesUnderWay: number,
    /** Called once per batch, in completion order. */
    private readonly onOutcomes: (items: T[], outcomes: Outcome[]) => void,
    /** Batches waiting for their slot in the budget beyond which no more are added (BATCHES_WAITING). */
    private readonly maxWaiting = BATCHES_WAITING,
  ) {
    this.failed.catch(() => undefined); // for callers that never wait on it
  }

  /** Queues one object; a full batch leaves at once. Throws once sending has failed (e.g. a revoked key). */
  add(json: BrazeObjectJson, item: T): void {
    if (this.failure) throw this.failure;
    this.json.push(json);
    this.items.push(item);
    if (this.json.length === MAX_OBJECTS_PER_REQUEST) this.flush();
  }

  /** null while more batches may go; otherwise resolves when one may (rejects if sending failed). */
  room(): Promise<void> | null {
    if (this.failure) return Promise.reject(this.failure);
    // The queue's bound only holds a sender with batches of its own under way: their answers wake it.
    const queued = this.underWay.size > 0 && this.braze.requestsWaiting >= this.maxWaiting;
    if (this.underWay.size < this.maxBatchesUnderWay && !queued) return null;
    return new Promise<void>((resolve) => this.waitingForRoom.push(resolve)).then(() => {
      if (this.failure) throw this.failure;
    });
  }

  /** Objects added but not yet sent: they wait for a full batch. */
  get held(): number {
    return this.json.length;
  }

  /** Sends what is left and waits for every batch; throws the first failure. */
  async finish(): Promise<void> {
    this.flush();
    while (this.underWay.size) await Promise.all(this.underWay);
    if (this.failure) throw this.failure;
  }

  /**
   * The objects held for a batch copied out of the memory they are views of (which their owner
   * wants back before a batch takes them), and the items they belong to.
   */
  copyHeld(): readonly T[] {
    if (this.json.length === 0) return [];
    const copy = Buffer.concat(this.json);
    let at = 0;
    this.json = this.json.map((o) => copy.subarray(at, (at += o.length)));
    return this.items;
  }

  /** Takes back the objects held for a batch, unsent (the run is stopping). */
  discardHeld(): T[] {
    const items = this.items;
    this.json = [];
    this.items = [];
    return items;
  }

  /** Sends the objects held now, in a batch that is not full. */
  flush(): void {
    if (this.json.length === 0) return;
    const json = this.json;
    const items = this.items;
    this.json = [];
    this.items = [];
    const batch: Promise<void> = this.braze
      .track(json)
      .then((outcomes) => this.onOutcomes(items, outcomes))
      .catch((e: unknown) => {
        this.failure ??= e;
        this.fail(e);
      })
      .finally(() => {
        this.underWay.delete(batch);
        for (const wake of this.waitingForRoom.splice(0)) wake();
      });
    this.underWay.add(batch);
  }
}
