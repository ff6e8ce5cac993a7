// Bad input and Braze faults the engine must survive: counts add up, nothing is lost silently, and
// the run's status says what happened.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { RequestBudget, requestsInFlightFor } from '../../shared/braze/request-budget';
import { services } from '../../shared/services';
import type { RunRecord } from '../../shared/store/runs';
import { useAzurite } from '../helpers/app';
import { COLUMNS, MATCHING, rows, writeCiExport, type TableSpec } from '../helpers/ci-export';
import { SANDBOX_KEY_WITHOUT_USERS_TRACK } from '../../scripts/braze-sandbox';
import { createConnection, createExport, runNow, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

async function exportOf(tables: TableSpec[], over: Record<string, unknown> = {}, conn: Record<string, unknown> = {}) {
  const source = await writeCiExport(services().storage.ciBlobs, tables);
  const connection = await createConnection(sandbox().url, conn);
  return createExport(connection.id, { source, segments: tables.map((t) => t.segment), matching: MATCHING, ...over });
}

function expectBalanced(run: RunRecord) {
  const c = run.counts!;
  expect(c.profiles).toBe(c.sent + c.unchanged + c.rejected + c.failed);
}

async function report(run: RunRecord): Promise<string> {
  const [container, ...name] = run.rejectedReport!.split('/');
  return (
    await services().storage.appBlobs.getContainerClient(container!).getBlobClient(name.join('/')).downloadToBuffer()
  ).toString();
}

describe('bad snapshot input', () => {
  it('a malformed CSV row is rejected with its reason; the rest is sent', async () => {
    const exp = await exportOf([
      { segment: 'S', partitions: [`${rows(3)}c8,u8,stray"quote@example.com,Q\n${rows(2, { from: 4 })}c9,u9,"never closed,Z\n`] },
    ]);
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.counts).toMatchObject({ rowsRead: 7, profiles: 7, sent: 6, rejected: 1, failed: 0 });
    expect(run.omittedAttributes).toEqual({ email: 1 }); // the stray quote makes an invalid email, not a lost row
    expect(await report(run)).toMatch(/malformed CSV: MissingQuotes/);
    expect(sandbox().profiles.size).toBe(6);
  });

  it('an unclosed quote that swallows rows is reported with the lines it spans', async () => {
    const exp = await exportOf([
      { segment: 'S', partitions: [`${rows(2)}c7,u7,"open,X\nc8,u8,p8@example.com,"Name8"\n${rows(1, { from: 3 })}`] },
    ]);
    const { run } = await runNow(exp.id);
    expectBalanced(run);
    expect(run.counts).toMatchObject({ sent: 3, rejected: 1 });
    expect(await report(run)).toMatch(/record spans several lines/);
  });

  it('rows wider or narrower than model.json are rejected, each with its reason', async () => {
    const exp = await exportOf([{ segment: 'S', partitions: [`${rows(2)}c7,u7,w@example.com,W,extra\nc8,u8\n`] }]);
    const { run } = await runNow(exp.id);
    expectBalanced(run);
    expect(run.counts).toMatchObject({ rowsRead: 4, sent: 2, rejected: 2 });
    const csv = await report(run);
    expect(csv).toContain('row has 5 fields, the table has 4 columns');
    expect(csv).toContain('row has 2 fields, the table has 4 columns');
  });

  it('an unknown column in the mapping fails the run before anything is sent, naming it', async () => {
    const exp = await exportOf([{ segment: 'S', partitions: [rows(3)] }], {
      matching: { ...MATCHING, attributes: { first_name: 'FirstName', city: 'HomeCity' } },
    });
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('failed');
    expect(run.errors.join()).toMatch(/matching\.attributes\.city → "HomeCity"/);
    expect(sandbox().stats.requests).toBe(0);
  });

  it('a 1 MB field is left out of the profile and counted; the profile is still sent', async () => {
    const big = 'x'.repeat(1024 * 1024);
    const exp = await exportOf([{ segment: 'S', partitions: [`c1,u1,a@example.com,${big}\n${rows(2, { from: 2 })}`] }]);
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.counts).toMatchObject({ profiles: 3, sent: 3 });
    expect(run.omittedAttributes).toEqual({ first_name: 1 });
    expect(sandbox().profiles.get('external_id:u1')!.attributes.first_name).toBeUndefined();
  });

  it('a partition listed in model.json but missing: nothing is exported, and the run says why', async () => {
    const exp = await exportOf([{ segment: 'S', partitions: [rows(3), null] }]);
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('failed');
    expect(run.errors.join()).toMatch(/S_2\.csv is listed in model\.json but missing: the snapshot is still being written/);
    expect(sandbox().stats.requests).toBe(0);
  });

  it('an empty segment exports nothing for it and succeeds', async () => {
    const exp = await exportOf([
      { segment: 'Full', partitions: [rows(2)] },
      { segment: 'Empty', partitions: [''] },
    ]);
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.segments).toEqual({ Full: { rows: 2 }, Empty: { rows: 0 } });
    expect(sandbox().profiles.get('external_id:u1')!.attributes['0000-0000-0000']).toEqual(['Full']);
  });

  it('the same profile twice in one segment and in two segments becomes one object with both segments', async () => {
    const exp = await exportOf([
      { segment: 'A', partitions: [`${rows(2)}${rows(1)}`] },
      { segment: 'B', partitions: [rows(1, { from: 2 })] },
    ]);
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ rowsRead: 4, profiles: 2, sent: 2 });
    expect(sandbox().stats.concurrentUserWrites).toBe(0);
    expect(sandbox().profiles.get('alias:ci_customer_id:c2')!.attributes['0000-0000-0000']).toEqual(['A', 'B']);
    expect(sandbox().profiles.get('external_id:u1')!.attributes['0000-0000-0000']).toEqual(['A']);
  });

  it('a row with no usable identifier is rejected', async () => {
    const exp = await exportOf([{ segment: 'S', partitions: [`,,x@example.com,X\n${rows(1)}`] }]);
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ profiles: 2, sent: 1, rejected: 1 });
    expect(await report(run)).toMatch(/no usable identifier/);
  });

  it('without model.json, a folder still settling is not exported; once settled, the newest timestamp folder is read by its header row', async () => {
    const blobs = services().storage.ciBlobs;
    const header = COLUMNS.map((c) => c.name).join(',');
    const source = await writeCiExport(blobs, [{ segment: 'S', partitions: [`${header}\n${rows(2)}`] }], {
      withModel: false,
      stamp: '2026/11/19/0100',
    });
    // The newest folder's header names the columns in another order than the older folder's.
    const reordered = (csv: string) =>
      csv
        .trimEnd()
        .split('\n')
        .map((line) => line.split(',').reverse().join(','))
        .join('\n') + '\n';
    await writeCiExport(blobs, [{ segment: 'S', partitions: [reordered(`${header}\n${rows(3, { from: 10 })}`)] }], {
      withModel: false,
      folder: source.folder,
      stamp: '2026/11/20/0100',
    });
    const conn = await createConnection(sandbox().url);
    const exp = await createExport(conn.id, { source, segments: ['S'], matching: MATCHING });
    // Just written: not settled yet, so not exported.
    const first = await runNow(exp.id);
    expect(first.run.status).toBe('failed');
    expect(first.run.errors.join()).toMatch(/may still be being written/);
    expect(sandbox().stats.requests).toBe(0);

    // Two minutes later (only the clock moves; Azurite and the sandbox are real).
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 2 * 60_000);
    try {
      const { run } = await runNow(exp.id);
      expect(run.status).toBe('succeeded');
      expect(run.counts).toMatchObject({ rowsRead: 3, profiles: 3, sent: 3, rejected: 0 });
      expect(sandbox().profiles.size).toBe(3); // the older folder's c1, c2 are not sent
      expect(sandbox().profiles.get('external_id:u11')!.attributes).toMatchObject({
        email: 'p11@example.com',
        first_name: 'Name11',
        '0000-0000-0000': ['S'],
      });
      expect(sandbox().profiles.get('alias:ci_customer_id:c10')!.attributes).toMatchObject({
        email: 'p10@example.com',
        first_name: 'Name10',
      });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('Braze transport', () => {
  it('keeps connections alive: about one connection per request in flight, reused for the rest', async () => {
    const exp = await exportOf([{ segment: 'S', partitions: [rows(30_000)] }]);
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ sent: 30_000 });
    // 400 full batches, give or take a few partial ones (a profile the key filter was unsure of is sent after reading).
    expect(sandbox().stats.requests).toBeGreaterThanOrEqual(400);
    expect(sandbox().stats.requests).toBeLessThan(410);
    // At most one connection per request in flight (the test connection's budget is Braze's whole
    // limit); without keep-alive there would be one per request, 400.
    const inFlight = requestsInFlightFor(new RequestBudget({ requestsPerWindow: 3000 }).requestsPerSecond);
    expect(sandbox().stats.connections).toBeLessThanOrEqual(inFlight);
    expect(sandbox().stats.connections).toBeLessThan(sandbox().stats.requests * 0.7);
  });

  it('keeps more requests in flight when Braze answers slowly, so its round trip does not set the pace', async () => {
    // At 150 ms a request, the budget's ~970 a second take ~145 in flight; a run kept 48 (64 in all
    // to one connection) whatever the round trip: ~320 requests a second. Every profile is in both
    // segments, so nothing is sent early: the buckets send it all.
    const exp = await exportOf([
      { segment: 'S', partitions: [rows(30_000)] },
      { segment: 'T', partitions: [rows(30_000)] },
    ]);
    sandbox().setFaults({ slowMs: 150 });
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ profiles: 30_000, sent: 30_000, failed: 0 });
    expect(sandbox().stats.maxConcurrent).toBeGreaterThan(64);
    const inFlight = requestsInFlightFor(new RequestBudget({ requestsPerWindow: 3000 }).requestsPerSecond);
    expect(sandbox().stats.maxConcurrent).toBeLessThanOrEqual(inFlight);
  });
});

describe('Braze faults', () => {
  it('429 for 4 s: waits as the headers say, then delivers everything', async () => {
    const exp = await exportOf([{ segment: 'S', partitions: [rows(200)] }]);
    sandbox().setFaults({ rateLimitForMs: 4_000 });
    const started = Date.now();
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.counts).toMatchObject({ profiles: 200, sent: 200, failed: 0 });
    expect(run.requests!.rateLimited).toBeGreaterThan(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_600);
    expect(sandbox().profiles.size).toBe(200);
  }, 60_000);

  it('503 for a batch: retried with backoff, nothing lost', async () => {
    const exp = await exportOf([{ segment: 'S', partitions: [rows(150)] }]);
    sandbox().setFaults({ fail5xx: 2 });
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.counts).toMatchObject({ sent: 150, failed: 0 });
    expect(run.requests!.retried).toBeGreaterThanOrEqual(2);
    expect(sandbox().profiles.size).toBe(150);
  });

  it('a dropped connection mid-request is retried', async () => {
    const exp = await exportOf([{ segment: 'S', partitions: [rows(100)] }]);
    sandbox().setFaults({ dropConnections: 1 });
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.counts).toMatchObject({ sent: 100, failed: 0 });
    expect(run.requests!.retried).toBeGreaterThanOrEqual(1);
    expect(sandbox().profiles.size).toBe(100);
  });

  it('a 400 caused by one bad object among 75: the batch is split, only that profile is rejected', async () => {
    const exp = await exportOf([{ segment: 'S', partitions: [rows(75, { name: (i) => (i === 40 ? 'POISON' : `Name${i}`) })] }]);
    sandbox().setFaults({ badObjectMarker: 'POISON' });
    const { run } = await runNow(exp.id);
    expectBalanced(run);
    expect(run.counts).toMatchObject({ profiles: 75, sent: 74, rejected: 1, failed: 0 });
    expect(await report(run)).toMatch(/c40,Braze refused the object \(400/);
    expect(sandbox().profiles.size).toBe(74);
    // Not recorded as sent: the next run tries it again.
    sandbox().setFaults({ badObjectMarker: undefined });
    const { run: again } = await runNow(exp.id);
    expect(again.counts).toMatchObject({ sent: 1, unchanged: 74 });
  });

  it('a 400 for the request as a whole: failed (not rejected), few requests, and the next run sends them', async () => {
    const exp = await exportOf([{ segment: 'S', partitions: [rows(300)] }]);
    sandbox().setFaults({ refuseEveryRequest: 'Request blocked by policy' });
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('partially_succeeded');
    expect(run.counts).toMatchObject({ profiles: 300, sent: 0, rejected: 0, failed: 300 });
    expectBalanced(run);
    // 4 batches, each: the batch and one probe per half — not ~2 requests per profile.
    expect(sandbox().stats.requests).toBeLessThanOrEqual(4 * 3);
    expect(run.rejectedReport).toBeNull();
    sandbox().setFaults({ refuseEveryRequest: undefined });
    const again = await runNow(exp.id);
    expect(again.run).toMatchObject({ status: 'succeeded', counts: expect.objectContaining({ sent: 300 }) });
    expect(sandbox().profiles.size).toBe(300);
  });

  it('2xx errors[].index marks exactly the objects Braze refused', async () => {
    const exp = await exportOf([
      { segment: 'S', partitions: [rows(10, { name: (i) => (i === 3 || i === 8 ? 'ODD' : `Name${i}`) })] },
    ]);
    sandbox().setFaults({ objectErrorMarker: 'ODD' });
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ profiles: 10, sent: 8, rejected: 2 });
    const csv = await report(run);
    expect(csv).toMatch(/c3,Braze: Invalid value/);
    expect(csv).toMatch(/c8,Braze: Invalid value/);
  });

  it('a revoked key (401) fails the run naming the key and the users.track permission', async () => {
    const exp = await exportOf([{ segment: 'S', partitions: [rows(20)] }]);
    sandbox().setFaults({ revokeKey: true });
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('failed');
    expect(run.errors.join()).toMatch(/401.*users\.track/);
    // The export is free for the next run.
    const state = await services().exports.view((await services().exports.get(exp.id)).value);
    expect(state.lastRun).toMatchObject({ status: 'failed' });
  });

  it('a key without users.track (403) fails the run naming the permission', async () => {
    sandbox().reset();
    const exp = await exportOf([{ segment: 'S', partitions: [rows(5)] }], {}, { apiKey: SANDBOX_KEY_WITHOUT_USERS_TRACK });
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('failed');
    expect(run.errors.join()).toMatch(/403 Forbidden.*lacks the users\.track permission/);
    expect(run.errors.join()).not.toMatch(/401/);
    expect(sandbox().stats.byStatus).toEqual({ 403: 1 });
    expect(sandbox().profiles.size).toBe(0);
  });
});
