// Where batches are sent: attributes objects go in one at a time, leave in batches of ≤ 75 with a
// bounded number of batches under way (the connection's request budget paces them), and each
// batch's outcomes come back to the caller with the items they belong to.
import { MAX_OBJECTS_PER_REQUEST, type BrazeClient, type BrazeObjectJson, type Outcome } from '../braze/client';

export class BatchSender<T> {
  private json: BrazeObjectJson[] = [];
  private items: T[] = [];
  private readonly underWay = new Set<Promise<void>>();
  private failure: unknown = null;
  private readonly waitingForRoom: (() => void)[] = [];

  constructor(
    private readonly braze: BrazeClient,
    private readonly maxBatchesUnderWay: number,
    /** Called once per batch, in completion order. */
    private readonly onOutcomes: (items: T[], outcomes: Outcome[]) => void,
  ) {}

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
    if (this.underWay.size < this.maxBatchesUnderWay) return null;
    return new Promise<void>((resolve) => this.waitingForRoom.push(resolve)).then(() => {
      if (this.failure) throw this.failure;
    });
  }

  /** Sends what is left and waits for every batch; throws the first failure. */
  async finish(): Promise<void> {
    this.flush();
    while (this.underWay.size) await Promise.all(this.underWay);
    if (this.failure) throw this.failure;
  }

  private flush(): void {
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
      })
      .finally(() => {
        this.underWay.delete(batch);
        for (const wake of this.waitingForRoom.splice(0)) wake();
      });
    this.underWay.add(batch);
  }
}

/** Sends every object; outcomes come back in input order. */
export async function sendAll(braze: BrazeClient, objects: BrazeObjectJson[], maxBatchesUnderWay: number, onBatch: () => Promise<void>): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array(objects.length);
  let reports = Promise.resolve();
  const sender = new BatchSender<number>(braze, maxBatchesUnderWay, (indexes, batchOutcomes) => {
    indexes.forEach((i, j) => (outcomes[i] = batchOutcomes[j]!));
    reports = reports.then(onBatch);
  });
  for (let i = 0; i < objects.length; i++) {
    sender.add(objects[i]!, i);
    const wait = sender.room();
    if (wait) await wait;
  }
  await sender.finish();
  await reports;
  return outcomes;
}
