// What the sandbox tells the benchmark about a run's requests: the busiest window since the run
// began, how its first window filled (arrivals per 0.5 s from its first request), counting only
// the /users/track requests that came since then, and the most connections open at once meanwhile.
import http from 'node:http';
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

/** A /users/track request to the sandbox at `at` on `agent`'s kept-alive connection. */
function trackOn(at: string, agent: http.Agent, id: string): Promise<number> {
  const body = JSON.stringify({ attributes: [{ external_id: id }] });
  return new Promise((resolve, reject) => {
    const req = http.request(`${at}/users/track`, {
      method: 'POST',
      agent,
      headers: { authorization: `Bearer ${SANDBOX_KEY}`, 'content-type': 'application/json' },
    });
    req.on('response', (res) => res.resume().on('end', () => resolve(res.statusCode!)));
    req.on('error', reject);
    req.end(body);
  });
}

async function statsSince(
  since: number,
  at = url,
): Promise<{ busiestWindow?: number; firstSecondsArrivals?: number[]; trackConnectionsAtOnce?: number }> {
  return (await (await fetch(`${at}/sandbox/stats?busiestSince=${since}`)).json()) as never;
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

  it('count the most /users/track connections open at once since the run began, those open when it began included', async () => {
    // A sandbox of its own: no other test's kept-alive connection is open.
    const quiet = new BrazeSandbox();
    const at = await quiet.start();
    try {
      const agents = Array.from({ length: 3 }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
      const since = Date.now();
      expect(await Promise.all(agents.map((a, i) => trackOn(at, a, `open-${i}`)))).toEqual([201, 201, 201]);
      expect((await statsSince(since, at)).trackConnectionsAtOnce).toBe(3);
      agents[0]!.destroy();
      agents[1]!.destroy();
      // Once the sandbox has seen them close, one is open.
      for (const from = Date.now(); (await statsSince(Date.now(), at)).trackConnectionsAtOnce !== 1;) {
        if (Date.now() - from > 2000) throw new Error('the sandbox did not see the connections close');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const later = Date.now();
      expect(await trackOn(at, agents[2]!, 'still-open')).toBe(201);
      expect((await statsSince(later, at)).trackConnectionsAtOnce).toBe(1);
      const another = new http.Agent({ keepAlive: true });
      expect(await trackOn(at, another, 'new')).toBe(201);
      expect((await statsSince(later, at)).trackConnectionsAtOnce).toBe(2);
      [agents[2]!, another].forEach((a) => a.destroy());
    } finally {
      await quiet.stop();
    }
  });

  it('are empty for a run that sent nothing', async () => {
    const stats = await statsSince(Date.now() + 1);
    expect(stats.busiestWindow).toBe(0);
    expect(stats.firstSecondsArrivals).toEqual([]);
  });
});
