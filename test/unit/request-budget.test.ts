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

  it('after a 429, nobody starts before the reset, and it slows down', async () => {
    const clock = fakeClock();
    const budget = new RequestBudget({ requestsPerWindow: 3000, ...clock });
    await startTimes(budget, clock, 10);
    const until = clock.now() + 5000;
    budget.rateLimited(until);
    const [next] = await startTimes(budget, clock, 1);
    expect(next).toBeGreaterThanOrEqual(until);
    expect(budget.speed).toBeLessThan(1);
  });

  it('waits for the window reset when Braze says nothing remains', async () => {
    const clock = fakeClock();
    const budget = new RequestBudget({ requestsPerWindow: 3000, ...clock });
    budget.observe(0, clock.now() + 2000);
    const [next] = await startTimes(budget, clock, 1);
    expect(next).toBeGreaterThanOrEqual(1_000_000 + 2000);
  });
});
