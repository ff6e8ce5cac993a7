// What the sandbox tells the benchmark about a run's requests: the busiest window since the run
// began, and how its first window filled (arrivals per 0.5 s from its first request), counting
// only the /users/track requests that came since then.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrazeSandbox, SANDBOX_KEY } from '../../scripts/braze-sandbox';

const sandbox = new BrazeSandbox();
let url: string;

beforeAll(async () => {
  url = await sandbox.start();
});
afterAll(() => sandbox.stop());

async function track(id: string): Promise<void> {
  const res = await fetch(`${url}/users/track`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SANDBOX_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ attributes: [{ external_id: id, first_name: 'Ada' }] }),
  });
  expect(res.status).toBe(201);
}

async function statsSince(since: number): Promise<{ busiestWindow?: number; firstSecondsArrivals?: number[] }> {
  return (await (await fetch(`${url}/sandbox/stats?busiestSince=${since}`)).json()) as never;
}

describe('the sandbox stats for a run', () => {
  it('count only the requests since the run began: the busiest window, and six half-seconds from the first', async () => {
    await track('before-the-run');
    // Arrivals are timed to the millisecond: the run begins a few after the one before it.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const since = Date.now();
    for (const id of ['a', 'b', 'c']) await track(id);
    const stats = await statsSince(since);
    expect(stats.busiestWindow).toBe(3);
    expect(stats.firstSecondsArrivals).toHaveLength(6);
    expect(stats.firstSecondsArrivals!.reduce((a, b) => a + b, 0)).toBe(3);
    expect(stats.firstSecondsArrivals![0]).toBeGreaterThan(0); // the first request opens the first half-second
  });

  it('are empty for a run that sent nothing', async () => {
    const stats = await statsSince(Date.now() + 1);
    expect(stats.busiestWindow).toBe(0);
    expect(stats.firstSecondsArrivals).toEqual([]);
  });
});
