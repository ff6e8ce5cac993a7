// Pacing against Braze's window, on a fake clock (no real waiting).
import { describe, expect, it } from 'vitest';
import { RequestBudget } from '../../shared/braze/request-budget';

function fakeClock() {
  let now = 1_000_000;
  return { now: () => now, sleep: async (ms: number) => void (now += ms), advance: (ms: number) => void (now += ms) };
}

/**
 * A clock for requests under way together: sleeps end in time order, each once every promise has
 * settled. `tickMs`: each reading of the clock finds it that much later (the thread's work between).
 */
function fakeTimeline(tickMs = 0) {
  let now = 1_000_000;
  const timers: { at: number; wake: () => void }[] = [];
  return {
    now: () => (now += tickMs),
    sleep: (ms: number) => new Promise<void>((wake) => void timers.push({ at: now + ms, wake })),
    async runUntil(done: () => boolean) {
      for (;;) {
        await new Promise((r) => setImmediate(r));
        if (done()) return;
        timers.sort((a, b) => a.at - b.at);
        const next = timers.shift();
        if (!next) throw new Error('nothing left to wake, and not done');
        now = Math.max(now, next.at);
        next.wake();
      }
    },
  };
}

/** A repeatable stream of numbers in [0, 1). */
const seeded = (seed: number) => () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;

async function startTimes(budget: RequestBudget, clock: ReturnType<typeof fakeClock>, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const slot = await budget.acquire();
    times.push(clock.now());
    slot.release();
  }
  return times;
}

const maxInAnyWindow = (times: number[], windowMs: number) => {
  let best = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
};

describe('request budget', () => {
  it('never starts more than the budget in any 3 s window, and uses most of it', async () => {
    const clock = fakeClock();
    const budget = new RequestBudget({ requestsPerWindow: 300, ...clock });
    const times = await startTimes(budget, clock, 1500);
    expect(maxInAnyWindow(times, 3000)).toBeLessThanOrEqual(300);
    const elapsed = times.at(-1)! - times[0]!;
    expect(elapsed).toBeLessThan((1500 / 300) * 3000 * 1.05); // ≥ 95 % of the allowed rate
  });

  it('after a 429, nobody starts before the reset, and it slows down', async () => {
    const clock = fakeClock();
    const budget = new RequestBudget({ requestsPerWindow: 3000, ...clock });
    await startTimes(budget, clock, 10);
    const until = clock.now() + 5000;
    budget.rateLimited(until - clock.now());
    const [next] = await startTimes(budget, clock, 1);
    expect(next).toBeGreaterThanOrEqual(until);
    expect(budget.speed).toBeLessThan(1);
  });

  it('waits for the window reset when Braze says nothing remains', async () => {
    const clock = fakeClock();
    const budget = new RequestBudget({ requestsPerWindow: 3000, ...clock });
    budget.observe(0, 2000);
    const [next] = await startTimes(budget, clock, 1);
    expect(next).toBeGreaterThanOrEqual(1_000_000 + 2000);
  });

  /**
   * Requests under way together, Braze counting each on arrival: somewhere between its slot and its
   * answer (a transit, a queue at Braze), answered up to 400 ms later. Returns the arrival times, and
   * the time from the first slot to the last answer.
   */
  async function underWay(seed: number, { perWindow = 300, requests = 1500, answerMs = 400, tickMs = 0 } = {}) {
    const time = fakeTimeline(tickMs);
    const budget = new RequestBudget({ requestsPerWindow: perWindow, maxInFlight: 40, ...time });
    const random = seeded(seed);
    const arrivals: number[] = [];
    let [left, first, last] = [requests, Infinity, 0];
    const sender = async () => {
      while (left-- > 0) {
        const slot = await budget.acquire();
        const start = time.now();
        first = Math.min(first, start);
        await time.sleep(1 + random() * answerMs);
        arrivals.push(start + random() * (time.now() - start));
        last = time.now();
        slot.release();
      }
    };
    let finished = false;
    void Promise.all(Array.from({ length: 40 }, sender)).then(() => (finished = true));
    await time.runUntil(() => finished);
    return { arrivals: arrivals.sort((x, y) => x - y), seconds: (last - first) / 1000, pace: budget.requestsPerSecond };
  }

  it("keeps at most 97 % of the budget in any window of Braze's, whenever Braze counts each request, and uses most of it", async () => {
    for (const seed of [7, 11, 13]) {
      const { arrivals, seconds, pace } = await underWay(seed);
      expect(arrivals).toHaveLength(1500);
      expect(maxInAnyWindow(arrivals, 3000)).toBeLessThanOrEqual(291);
      expect(1500 / seconds).toBeGreaterThan(0.85 * pace);
    }
  });

  it("at Braze's whole limit too, where twice the pace is a slot every half millisecond (shorter than a timer can wait)", async () => {
    for (const seed of [7, 11]) {
      const { arrivals, seconds, pace } = await underWay(seed, { perWindow: 3000, requests: 9000, answerMs: 2, tickMs: 0.05 });
      expect(arrivals).toHaveLength(9000);
      expect(maxInAnyWindow(arrivals, 3000)).toBeLessThanOrEqual(2910);
      expect(9000 / seconds).toBeGreaterThan(0.85 * pace);
    }
  });

  it('a run that waited catches up what the time it waited allows, at up to twice the pace', async () => {
    const clock = fakeClock();
    const budget = new RequestBudget({ requestsPerWindow: 300, ...clock });
    clock.advance(1000); // reading before the first request
    const waitedUntil = clock.now();
    const times = await startTimes(budget, clock, 200);
    const step = 3000 / 291;
    const behind = Math.floor((1000 * 291) / 3000); // the second it waited: 97 requests
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(times[0]).toBe(waitedUntil);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(step / 2 - 1e-6); // never faster than twice the pace
    // 2 × 97 requests in the time of 97 at the pace: the second waited is made up, then the pace.
    expect(times[2 * behind - 1]! - waitedUntil).toBeCloseTo(behind * step, 3);
    expect(gaps.slice(2 * behind).every((g) => Math.abs(g - step) < 1e-6)).toBe(true);
    expect(maxInAnyWindow(times, 3000)).toBeLessThanOrEqual(291);
  });

  it('a run that sends at once goes at the even pace from the start', async () => {
    const clock = fakeClock();
    const budget = new RequestBudget({ requestsPerWindow: 300, ...clock });
    const times = await startTimes(budget, clock, 20);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    for (const gap of gaps) expect(gap).toBeCloseTo(3000 / 291, 5);
  });

  it('the next run on the limit starts once a burst has left the window: together they stay within the budget', async () => {
    const clock = fakeClock();
    const first = new RequestBudget({ requestsPerWindow: 300, ...clock });
    clock.advance(3000);
    const burst = await startTimes(first, clock, 291);
    expect(burst.at(-1)! - burst[0]!).toBeCloseTo((290 * 3000) / 291 / 2, 3); // a window's worth at twice the pace
    const handOver = clock.now() + first.msUntilEven();
    expect(handOver - burst[0]!).toBeCloseTo(3000, 0);

    const next = (createdAt: number) => {
      const c = fakeClock();
      c.advance(createdAt - c.now());
      return startTimes(new RequestBudget({ requestsPerWindow: 300, ...c }), c, 300);
    };
    expect(maxInAnyWindow([...burst, ...(await next(handOver))], 3000)).toBeLessThanOrEqual(291);
    // Not waiting for it would have crowded Braze's window.
    expect(maxInAnyWindow([...burst, ...(await next(burst.at(-1)!))], 3000)).toBeGreaterThan(291);
  });

  it('a run that kept the even pace hands over at once', async () => {
    const clock = fakeClock();
    const budget = new RequestBudget({ requestsPerWindow: 300, ...clock });
    const times = await startTimes(budget, clock, 50);
    expect(clock.now() + budget.msUntilEven() - times.at(-1)!).toBeLessThanOrEqual(3000 / 291 + 0.001);
  });

  it('a request that finishes hands its place in flight to the first one waiting: none overtakes it', async () => {
    const clock = fakeClock();
    const budget = new RequestBudget({ requestsPerWindow: 3000, maxInFlight: 1, ...clock });
    clock.advance(3000);
    const order: string[] = [];
    const first = await budget.acquire();
    const waiting = budget.acquire().then((slot) => (order.push('waiting'), slot));
    await Promise.resolve();
    first.release();
    const late = budget.acquire().then((slot) => (order.push('late'), slot));
    (await waiting).release();
    (await late).release();
    expect(order).toEqual(['waiting', 'late']);
  });
});
