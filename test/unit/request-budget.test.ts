// Pacing against Braze's window, on a fake clock (no real waiting).
import { describe, expect, it } from 'vitest';
import { RequestBudget } from '../../shared/braze/request-budget';

function fakeClock() {
  let now = 1_000_000;
  return { now: () => now, sleep: async (ms: number) => void (now += ms) };
}

async function startTimes(budget: RequestBudget, clock: ReturnType<typeof fakeClock>, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    await budget.acquire();
    times.push(clock.now());
    budget.release();
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

  it('a sender held up for a moment makes the starts up at once, and still never starts more than the budget in any window', async () => {
    const clock = fakeClock();
    const budget = new RequestBudget({ requestsPerWindow: 3000, ...clock });
    const times: number[] = [];
    for (let i = 0; i < 9000; i++) {
      if (i % 100 === 99 && i < 6000) void clock.sleep(i % 300 === 299 ? 400 : 20); // a collection or a busy core, now and then a long one
      if (i === 6000) void clock.sleep(5000); // idle, then at full speed for a whole window
      await budget.acquire();
      times.push(clock.now());
      budget.release();
    }
    expect(maxInAnyWindow(times, 3000)).toBeLessThanOrEqual(3000 * 0.98 + 1);
    // The short holdups (20 ms, within what is made up) cost nothing; the long ones only their excess.
    const interval = 3000 / (3000 * 0.97);
    const longHoldups = (6000 / 300) * (400 - 30 * interval) + 5000;
    expect(times.at(-1)! - times[0]!).toBeLessThan(9000 * interval + longHoldups + 10);
  });

  it('after a 429, nobody starts before the reset, and it slows down', async () => {
    const clock = fakeClock();
    const budget = new RequestBudget({ requestsPerWindow: 3000, ...clock });
    await startTimes(budget, clock, 10);
    const until = clock.now() + 5000;
    budget.rateLimited(until);
    const [next] = await startTimes(budget, clock, 1);
    expect(next).toBeGreaterThanOrEqual(until);
    expect(budget.speed).toBeLessThan(1);
    // Slowed down, it makes nothing up after a holdup: starts stay apart.
    void clock.sleep(1000);
    const after = await startTimes(budget, clock, 5);
    for (let i = 1; i < after.length; i++) expect(after[i]! - after[i - 1]!).toBeGreaterThanOrEqual(1);
  });

  it('waits for the window reset when Braze says nothing remains', async () => {
    const clock = fakeClock();
    const budget = new RequestBudget({ requestsPerWindow: 3000, ...clock });
    budget.observe(0, clock.now() + 2000);
    const [next] = await startTimes(budget, clock, 1);
    expect(next).toBeGreaterThanOrEqual(1_000_000 + 2000);
  });
});
