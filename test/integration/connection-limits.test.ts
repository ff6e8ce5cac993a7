// Braze's limits on a connection, against Azurite and the Braze sandbox: the rate-limit headers
// Braze answers with are recorded and shown to Admins; a budget above what Braze reports is
// warned about; an hourly request cap holds across exports, runs and workers on the connection,
// and a run that reaches it waits for the next hour visibly, losing nothing.
import { describe, expect, it, beforeEach } from 'vitest';
import { connectionItem } from '../../functions/connectionItem';
import { loadConfig } from '../../shared/config';
import { createServices, services } from '../../shared/services';
import { ConnectionLimitsRepo, hourStartOf } from '../../shared/store/connection-limits';
import { HourlyCap } from '../../shared/braze/hourly-cap';
import { RunsRepo, type RunRecord } from '../../shared/store/runs';
import { TABLES } from '../../shared/store/clients';
import { GUARD_OFF } from '../../shared/exports/schema';
import { call, useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { ADMIN, createConnection, createExport, runNow, SANDBOX_KEY, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(async () => {
  sandbox().reset();
  await services().storage.runQueue.clearMessages();
  await awayFromTheHourTurn();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The cap counts per clock hour: a test must not straddle one. */
async function awayFromTheHourTurn() {
  const intoHour = Date.now() % 3_600_000;
  if (intoHour > 3_600_000 - 45_000) await sleep(3_600_000 - intoHour + 1000);
}

const getConnection = (id: string, as: 'Admin' | 'Contributor' = 'Admin') =>
  call(connectionItem, { method: 'GET', path: `connections/${id}`, params: { id }, as });
const patchConnection = (id: string, body: unknown) =>
  call(connectionItem, { method: 'PATCH', path: `connections/${id}`, params: { id }, body });

/** An export of `profiles` profiles (4 requests at 75 a request for 300). */
async function exportOf(connectionId: string, profiles: number, from: number) {
  const source = await writeCiExport(services().storage.ciBlobs, [{ segment: 'S', partitions: [rows(profiles, { from })] }]);
  return createExport(connectionId, { source, segments: ['S'], matching: MATCHING });
}

async function queue(exportId: string): Promise<string> {
  const outcome = await services().runs.runNow(ADMIN, exportId, false);
  if (!('queued' in outcome)) throw new Error('expected a queued run');
  return outcome.queued.id;
}

/**
 * Two exports of 4 requests each on a connection capped at 5 requests an hour: the first runs; the
 * second's run is queued and worked once (the test plays the worker), and meets the cap.
 */
async function secondRunCappedThisHour() {
  const app = services();
  const conn = await createConnection(sandbox().url, { hourlyRequestCap: 5 });
  const first = await exportOf(conn.id, 300, 1); // 4 requests
  const second = await exportOf(conn.id, 300, 1001); // 4 more: only 1 fits this hour
  expect((await runNow(first.id)).run.status).toBe('succeeded');
  const runId = await queue(second.id);
  await app.storage.runQueue.clearMessages();
  await app.worker.execute(runId, () => undefined);
  return { conn, runId, second };
}

describe('the sandbox answers with rate-limit headers as Braze does', () => {
  const track = () =>
    fetch(`${sandbox().url}/users/track`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${SANDBOX_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ attributes: [{ external_id: 'h1', first_name: 'H' }] }),
    });

  it('Limit, Remaining and Reset (epoch seconds) on a 2xx; only Retry-After on a 429; a given limit when told', async () => {
    const ok = await track();
    expect(ok.status).toBe(201);
    expect(ok.headers.get('x-ratelimit-limit')).toBe('3000');
    expect(Number(ok.headers.get('x-ratelimit-remaining'))).toBe(2999);
    expect(Number(ok.headers.get('x-ratelimit-reset')) * 1000).toBeGreaterThan(Date.now());
    sandbox().setFaults({ rateLimitForMs: 2000 });
    const limited = await track();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('x-ratelimit-retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('x-ratelimit-limit')).toBeNull();
    expect(limited.headers.get('x-ratelimit-remaining')).toBeNull();
    sandbox().reset();
    sandbox().setFaults({ rateLimit: 500 });
    expect((await track()).headers.get('x-ratelimit-limit')).toBe('500');
  });
});

describe("Braze's rate-limit headers on the connection", () => {
  it('are recorded by a run and shown to Admins on GET /api/connections/{id}, never the key', async () => {
    const conn = await createConnection(sandbox().url, { allowContributors: true });
    const before = await getConnection(conn.id);
    expect(before.body.brazeRateLimit).toBeNull();
    const exp = await exportOf(conn.id, 150, 1);
    const started = Date.now();
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    const res = await getConnection(conn.id);
    expect(res.status).toBe(200);
    const seen = res.body.brazeRateLimit;
    expect(seen.limit).toBe(3000);
    expect(seen.remaining).toBeGreaterThanOrEqual(2990);
    expect(Date.parse(seen.resetsAt)).toBeGreaterThan(started - 1000);
    expect(Date.parse(seen.observedAt)).toBeGreaterThanOrEqual(started - 1000);
    expect(res.body.warnings).toEqual([]);
    expect(JSON.stringify(res.body)).not.toContain(SANDBOX_KEY);
    // Contributors see a shared connection by name only.
    const asContributor = (await getConnection(conn.id, 'Contributor')).body;
    expect(asContributor).not.toHaveProperty('brazeRateLimit');
    expect(asContributor).not.toHaveProperty('hourlyRequestCap');
  });

  it('warn when the request budget is above the limit Braze reports', async () => {
    sandbox().setFaults({ rateLimit: 500 }); // this workspace's contract: 500 requests per 3 s
    const conn = await createConnection(sandbox().url, { requestBudget: 1000 });
    expect((await runNow((await exportOf(conn.id, 150, 1)).id)).run.status).toBe('succeeded');
    const res = await getConnection(conn.id);
    expect(res.body.brazeRateLimit.limit).toBe(500);
    expect(res.body.warnings).toHaveLength(1);
    expect(res.body.warnings[0]).toMatch(/request budget \(1,000 requests per 3 s\) is above the limit Braze reported .*\(500/);
    // Lowered to what Braze allows, the warning goes.
    expect((await patchConnection(conn.id, { requestBudget: 500 })).body.warnings).toEqual([]);
  });
});

describe('the hourly request cap', () => {
  it('is an Admin setting, validated like the other connection fields', async () => {
    const conn = await createConnection(sandbox().url);
    for (const bad of [0, -3, 2.5, '100']) {
      const res = await patchConnection(conn.id, { hourlyRequestCap: bad });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body.error)).toContain('hourlyRequestCap');
    }
    const contributor = await call(connectionItem, {
      method: 'PATCH',
      path: `connections/${conn.id}`,
      params: { id: conn.id },
      body: { hourlyRequestCap: 10 },
      as: 'Contributor',
    });
    expect(contributor.status).toBe(403);
    const set = await patchConnection(conn.id, { hourlyRequestCap: 50_000 });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ hourlyRequestCap: 50_000, hourlyUsage: { used: 0, remaining: 50_000 } });
    expect((await patchConnection(conn.id, { hourlyRequestCap: null })).body.hourlyRequestCap).toBeNull();
  });

  it('is honoured across two exports on one connection; the capped run waits for the next hour and loses nothing', async () => {
    const app = services();
    const { conn, runId, second } = await secondRunCappedThisHour();
    // Its bucket needs 4 requests and 1 is left: it stops before the bucket rather than mid-way.
    const sentThisHour = sandbox().stats.requests;
    expect(sentThisHour).toBeLessThanOrEqual(5);

    let run = await app.runs.get(runId);
    const nextHour = new Date(hourStartOf(Date.now()) + 3_600_000).toISOString();
    expect(run.status).toBe('running'); // not failed, not cancelled: it goes on by itself
    expect(run.waitingFor).toMatch(/hourly request cap \(5 requests an hour\): resumes at \d\d:00 UTC/);
    expect(run.resumesAt).toBe(nextHour);
    // What Braze did not get is not recorded as sent.
    const inBraze = [...sandbox().profiles.keys()].filter((k) => /c1\d\d\d$/.test(k)).length;
    expect(inBraze).toBeLessThanOrEqual(75);
    expect(run.counts?.sent ?? 0).toBeLessThanOrEqual(inBraze);

    // The connection shows the hour used up; a second worker picking the run up sends nothing more.
    const usage = (await getConnection(conn.id)).body.hourlyUsage;
    expect(usage.used).toBeGreaterThanOrEqual(sentThisHour);
    expect(usage.used + usage.remaining).toBe(5);
    await app.worker.execute(runId, () => undefined);
    expect(sandbox().stats.requests).toBe(sentThisHour);
    expect((await app.runs.get(runId)).resumesAt).toBe(nextHour);
    // The timer does not take it for a stalled run while it waits for its hour, however long ago its last sign of life.
    const repo = new RunsRepo(app.storage.table(TABLES.runs));
    const stored = await repo.get(runId);
    await repo.updateIfUnchanged({ ...stored.value, heartbeatAt: new Date(Date.now() - 40 * 60_000).toISOString() }, stored.etag);
    const tick = await app.scheduler.tick(new Date(), () => undefined);
    expect(tick.requeued).not.toContain(runId);

    // Once sending may go on (here: the Admin raises the cap), the run finishes; the next run sends what is missing.
    await patchConnection(conn.id, { hourlyRequestCap: 1000 });
    for (let i = 0; i < 5 && ['queued', 'running'].includes((run = await app.runs.get(runId)).status); i++)
      await app.worker.execute(runId, () => undefined);
    expect(['succeeded', 'partially_succeeded']).toContain(run.status);
    expect(run.counts!.profiles).toBe(300);
    if (run.status === 'partially_succeeded') expect(run.errors.join(' ')).toMatch(/hourly request cap/);
    expect((await runNow(second.id)).run.status).toBe('succeeded');
    expect(sandbox().profiles.size).toBe(600);
  });

  it('stops a bucket bigger than the whole cap where the cap ends, and records only what Braze took', async () => {
    const app = services();
    const conn = await createConnection(sandbox().url, { hourlyRequestCap: 5 });
    const exp = await exportOf(conn.id, 600, 1); // one bucket of 8 requests: more than the whole cap
    const runId = await queue(exp.id);
    await app.storage.runQueue.clearMessages();
    await app.worker.execute(runId, () => undefined);
    expect(sandbox().stats.requests).toBe(5);
    const run = await app.runs.get(runId);
    // Every bucket was taken up, so the run ends; what Braze did not get is failed, for the next run.
    expect(run.status).toBe('partially_succeeded');
    // The cap alone: Braze refused nothing, so nothing is put down to Braze.
    expect(run.errors).toEqual([
      "The connection's hourly request cap stopped this run mid-way: the profiles not sent then count as failed; the next run sends them",
    ]);
    expect(run.counts!.sent).toBe(sandbox().profiles.size);
    expect(run.counts!.failed).toBe(600 - sandbox().profiles.size);
    await patchConnection(conn.id, { hourlyRequestCap: null });
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    expect(sandbox().profiles.size).toBe(600);
  });

  it('is honoured by two runs on two workers at once', async () => {
    const conn = await createConnection(sandbox().url, { hourlyRequestCap: 5 });
    const exps = [await exportOf(conn.id, 300, 1), await exportOf(conn.id, 300, 1001)];
    const ids = [await queue(exps[0]!.id), await queue(exps[1]!.id)];
    await services().storage.runQueue.clearMessages();
    // Two app instances (their own storage clients), each a worker, start both runs together.
    const other = createServices(loadConfig(), { brazeOptions: { backoffBaseMs: 20 } });
    const workers = [services().worker, other.worker];
    const waiting = (r: RunRecord) => r.resumesAt !== undefined && r.resumesAt !== null;
    let runs: RunRecord[] = [];
    for (let round = 0; round < 10; round++) {
      await Promise.all(workers.flatMap((w) => ids.map((id) => w.execute(id, () => undefined))));
      runs = await Promise.all(ids.map((id) => services().runs.get(id)));
      if (runs.every((r) => waiting(r) || r.status === 'succeeded')) break;
      await sleep(200);
    }
    expect(sandbox().stats.requests).toBeLessThanOrEqual(5);
    expect(runs.some(waiting), JSON.stringify(runs.map((r) => [r.status, r.waitingFor, r.errors]))).toBe(true);
    expect((await getConnection(conn.id)).body.hourlyUsage.used).toBeLessThanOrEqual(5);
  });

  it('counts requests in one row shared by every instance: concurrent reservations never pass the cap', async () => {
    const conn = await createConnection(sandbox().url);
    const repos = [services(), createServices(loadConfig())].map((s) => s.storage.table('connections'));
    const caps = repos.flatMap((t) =>
      [0, 1].map(() => {
        const repo = new ConnectionLimitsRepo(t);
        return new HourlyCap(
          { reserve: (h, w, c) => repo.reserve(conn.id, h, w, c), giveBack: (h, n) => repo.giveBack(conn.id, h, n) },
          60,
        );
      }),
    );
    const granted = await Promise.all(
      caps.map(async (cap) => {
        let n = 0;
        while (await cap.take()) n++;
        return n;
      }),
    );
    expect(granted.reduce((a, b) => a + b, 0)).toBe(60);
    expect(caps.every((c) => c.reached)).toBe(true);
    const usage = await new ConnectionLimitsRepo(repos[0]!).usage(conn.id);
    expect(usage.used).toBe(60);
  });

  it("a held run says how long sending what it holds would take at the connection's limits", async () => {
    const conn = await createConnection(sandbox().url, { hourlyRequestCap: 2 });
    const source = await writeCiExport(services().storage.ciBlobs, [{ segment: 'S', partitions: [rows(300, { from: 1 })] }]);
    const exp = await createExport(conn.id, {
      source,
      segments: ['S'],
      matching: MATCHING,
      guard: { ...GUARD_OFF, firstRunMaxProfiles: 10 },
    });
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('held');
    expect(run.held!.requests).toBe(4);
    // Until the next clock hour: seconds, in an hour's last minute.
    expect(run.held!.estimate).toMatch(/^about \d+ (s|min|h).*\(hourly cap 2 reached once\)$/);
    expect(sandbox().stats.requests).toBe(0);
  });

  it("the preview's estimate waits for the next hour when this hour's cap is used", async () => {
    const app = services();
    const conn = await createConnection(sandbox().url, { hourlyRequestCap: 2 });
    const exp = await exportOf(conn.id, 300, 1);
    // This hour's cap used up, as runs on the connection left it.
    await new ConnectionLimitsRepo(app.storage.table('connections')).reserve(conn.id, hourStartOf(Date.now()), 2, 2);
    const p = await app.preview.preview(ADMIN, exp.id, false);
    expect(p.requests).toBe(4);
    expect(p.estimate.limitedBy).toBe('hourlyCap');
    expect(p.estimate.hourlyCapWaits).toBe(2);
    expect(p.estimate.seconds).toBeGreaterThan(3600);
    expect(p.estimate.text).toMatch(/^about \d+ h( \d+ min)? \(hourly cap 2 reached twice\)$/);
  });

  it('a run that sends nothing (the same snapshot again) succeeds at once even when this hour is used up', async () => {
    const app = services();
    const conn = await createConnection(sandbox().url, { hourlyRequestCap: 10 });
    const exp = await exportOf(conn.id, 300, 1);
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    // This hour's 10 used elsewhere.
    const limits = new ConnectionLimitsRepo(app.storage.table('connections'));
    const used = (await limits.usage(conn.id)).used;
    await limits.reserve(conn.id, hourStartOf(Date.now()), 10 - used, 10);
    const before = sandbox().stats.requests;
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.waitingFor ?? null).toBeNull();
    expect(sandbox().stats.requests).toBe(before);
  });

  it('a run that waited for the hour and then met another failure does not blame the cap for it', async () => {
    const app = services();
    const { conn, runId } = await secondRunCappedThisHour();
    let run = await app.runs.get(runId);
    expect(run.resumesAt).toBeTruthy();
    // Next hour (the cap raised), Braze is down: the run's failures are Braze's, not the cap's.
    await patchConnection(conn.id, { hourlyRequestCap: 1000 });
    sandbox().setFaults({ fail5xx: 1_000_000 });
    for (let i = 0; i < 5 && ['queued', 'running'].includes((run = await app.runs.get(runId)).status); i++)
      await app.worker.execute(runId, () => undefined);
    sandbox().reset();
    expect(run.status).toBe('partially_succeeded');
    expect(run.counts!.failed).toBeGreaterThan(0);
    expect(run.errors).toEqual([
      `Braze did not take ${run.counts!.failed.toLocaleString('en-US')} profiles (Braze unavailable after 6 attempts (HTTP 503)): they count as failed; the next run sends them again`,
    ]);
  }, 60_000);

  it('a malformed limits row does not turn a committed PATCH or a GET into a 500', async () => {
    const conn = await createConnection(sandbox().url, { hourlyRequestCap: 10 });
    const table = services().storage.table('connections');
    await table.upsertEntity({ partitionKey: 'connection-limits', rowKey: `observed:${conn.id}`, data: '{not json' }, 'Replace');
    await table.upsertEntity({ partitionKey: 'connection-limits', rowKey: `hourly:${conn.id}`, hour: 7, used: 'x' }, 'Replace');
    const patched = await patchConnection(conn.id, { hourlyRequestCap: 20 });
    expect(patched.status).toBe(200);
    expect(patched.body.hourlyRequestCap).toBe(20);
    const got = await getConnection(conn.id);
    expect(got.status).toBe(200);
    expect(got.body.hourlyRequestCap).toBe(20);
  });

  it('a counter row in a future hour: a few minutes ahead (a clock a little behind) grants nothing; further ahead it is stale and reset', async () => {
    const conn = await createConnection(sandbox().url, { hourlyRequestCap: 10 });
    const table = services().storage.table('connections');
    const limits = new ConnectionLimitsRepo(table);
    const H = 3_600_000;
    const hour = hourStartOf(Date.now());
    const rowIn = (ms: number) =>
      table.upsertEntity(
        { partitionKey: 'connection-limits', rowKey: `hourly:${conn.id}`, hour: new Date(ms).toISOString(), used: 10 },
        'Replace',
      );
    // This worker's clock is 2 minutes before the hour that another instance already counts.
    await rowIn(hour + H);
    expect(await limits.reserve(conn.id, hour, 5, 10, hour + H - 2 * 60_000)).toBe(0);
    // An instance whose clock is hours ahead wrote the row: it no longer blocks everyone.
    await rowIn(hour + 3 * H);
    expect(await limits.reserve(conn.id, hour, 5, 10, hour + 60_000)).toBe(5);
    expect((await limits.usage(conn.id, hour + 60_000)).used).toBe(5);
  });
});
