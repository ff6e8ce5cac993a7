// How far sending runs ahead of the checkpoints: what a worker killed meanwhile would send again.
import { describe, expect, it } from 'vitest';
import { BUCKETS_UNDER_WAY, BucketsUnderWay, RECORDS_BEHIND } from '../../shared/engine/run/buckets-under-way';

/** A checkpoint that settles when the test says. */
function checkpoint() {
  let settle!: (e?: Error) => void;
  const promise = new Promise<void>((resolve, reject) => (settle = (e) => (e ? reject(e) : resolve())));
  return { promise, settle };
}

/** Whether room() has answered after the microtasks now due. */
async function answered<T>(p: Promise<T>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
}

/** BUCKETS_UNDER_WAY buckets of `objects` each under way, their checkpoints still to come (oldest first). */
function fullUnderWay(underWay: BucketsUnderWay, objects: number) {
  const checkpoints = Array.from({ length: BUCKETS_UNDER_WAY }, checkpoint);
  for (const c of checkpoints) underWay.add(objects, c.promise);
  return checkpoints;
}

/** Requests a second at Braze's whole default limit, less the budget's headroom. */
const FULL_PACE = 970;

describe('buckets under way', () => {
  it("lets a change run's small buckets go eight at a time, while they hold at most 1 % of the profiles", async () => {
    const underWay = new BucketsUnderWay(200_000, 2, FULL_PACE); // 100,000 profiles at most: up to 1,000 objects under way
    const checkpoints = Array.from({ length: 8 }, checkpoint);
    for (const c of checkpoints) {
      expect(await underWay.room(120)).toBe(true);
      underWay.add(120, c.promise);
    }
    // A ninth would fit the objects (1,080 with it; 960 once the first is checkpointed), not the buckets.
    const ninth = underWay.room(120);
    expect(await answered(ninth)).toBe(false);
    checkpoints[0]!.settle();
    expect(await ninth).toBe(true);
  });

  it("holds a first run's buckets to three, however large the export: a fourth waits for the checkpoint of the oldest", async () => {
    const underWay = new BucketsUnderWay(30_000_000, 3, FULL_PACE); // 1 % of 10 M profiles, but at most 7,500 objects
    const checkpoints = Array.from({ length: 3 }, checkpoint);
    expect(await underWay.room(5_000)).toBe(true);
    underWay.add(5_000, checkpoints[0]!.promise);
    for (const c of checkpoints.slice(1)) {
      expect(await underWay.room(5_000)).toBe(false);
      underWay.add(5_000, c.promise);
    }
    const fourth = underWay.room(5_000);
    expect(await answered(fourth)).toBe(false);
    checkpoints[0]!.settle();
    expect(await fourth).toBe(false);
  });

  it("holds a first run's buckets to two where a third would take longer to send again after a kill than DESIGN allows", async () => {
    // 1 M profiles; a budget of 30 requests per 3 s: 15 s of sending is 11,250 objects, 2.5 % of the profiles 25,000.
    const underWay = new BucketsUnderWay(3_000_000, 3, 10);
    const [a] = [checkpoint(), checkpoint()].map((c) => (underWay.add(10_000, c.promise), c));
    const third = underWay.room(10_000); // 30,000 objects under way with it
    expect(await answered(third)).toBe(false);
    a!.settle();
    expect(await third).toBe(false);
    // At Braze's whole limit the same three go at once.
    const fast = new BucketsUnderWay(3_000_000, 3, FULL_PACE);
    fast.add(10_000, checkpoint().promise);
    fast.add(10_000, checkpoint().promise);
    expect(await answered(fast.room(10_000))).toBe(true);
  });

  it('falls back to three once the buckets under way would hold more than that share', async () => {
    const underWay = new BucketsUnderWay(200_000, 2, FULL_PACE);
    const [a] = fullUnderWay(underWay, 300);
    // 1,200 objects with it: a fourth waits for the oldest.
    const next = underWay.room(300);
    expect(await answered(next)).toBe(false);
    a!.settle();
    expect(await next).toBe(true);
  });

  it("gives a bucket's room back once its state is written, while the run row lags at most two buckets beyond those under way", async () => {
    const underWay = new BucketsUnderWay(30_000_000, 3, FULL_PACE); // 10,000 objects a bucket: never few
    // The run row's writes wait (as they wait for the last checkpoint of what was sent early).
    const record = checkpoint();
    const states: ReturnType<typeof checkpoint>[] = [];
    for (let i = 0; i < BUCKETS_UNDER_WAY + RECORDS_BEHIND; i++) {
      const room = underWay.room(10_000);
      if (i >= BUCKETS_UNDER_WAY) {
        expect(await answered(room), `bucket ${i}`).toBe(false);
        states[i - BUCKETS_UNDER_WAY]!.settle(); // the oldest bucket's state is written: its room is back
      }
      await room;
      const state = checkpoint();
      states.push(state);
      underWay.add(10_000, state.promise, record.promise);
    }
    // Two buckets' states written, five waiting for the run row: the next waits for it, whatever the states.
    for (const s of states) s.settle();
    const next = underWay.room(10_000);
    expect(await answered(next)).toBe(false);
    record.settle();
    expect(await next).toBe(false);
  });

  it('stops the run when a run-row write fails, though the bucket state was written', async () => {
    const underWay = new BucketsUnderWay(200_000, 2, FULL_PACE);
    const record = checkpoint();
    underWay.add(50, Promise.resolve(), record.promise);
    record.settle(new Error('the run record could not be written'));
    await new Promise((r) => setImmediate(r));
    await expect(underWay.room(50)).rejects.toThrow(/record/);
  });

  it('stops the run when a checkpoint it waits on fails', async () => {
    const underWay = new BucketsUnderWay(0, 1, FULL_PACE);
    const [a] = fullUnderWay(underWay, 10);
    const next = underWay.room(10);
    a!.settle(new Error('the sync state of bucket 3 was written by another worker'));
    await expect(next).rejects.toThrow(/another worker/);
  });

  it('sends no more buckets once any checkpoint failed, even with room for them', async () => {
    const underWay = new BucketsUnderWay(200_000, 2, FULL_PACE);
    const [, b] = fullUnderWay(underWay, 50);
    b!.settle(new Error('the run record could not be written'));
    await new Promise((r) => setImmediate(r));
    await expect(underWay.room(50)).rejects.toThrow(/record/);
  });
});
