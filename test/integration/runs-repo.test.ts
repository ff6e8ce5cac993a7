// A run row never outgrows what Table Storage takes, however long or troubled the run.
import { describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { TABLES } from '../../shared/store/clients';
import { MAX_MESSAGE_CHARS, MAX_RUN_MESSAGES, newRunId, RunsRepo, type RunRecord } from '../../shared/store/runs';
import { RunWriter } from '../../shared/runs/run-writer';
import { exportRuns } from '../../functions/exportRuns';
import { call, useAzurite } from '../helpers/app';
import { ADMIN, sampleExportBody } from '../helpers/engine';

useAzurite();

const baseRun = (exportId: string): RunRecord => ({
  id: newRunId(exportId),
  exportId,
  trigger: 'schedule',
  fullSync: false,
  status: 'running',
  snapshot: null,
  queuedAt: new Date().toISOString(),
  queuedBy: 'scheduledRefresh',
  startedAt: null,
  finishedAt: null,
  heartbeatAt: null,
  attempts: 1,
  errors: [],
  rejectedReport: null,
});

describe('run rows', () => {
  it('a 10 M-profile run (4,096 buckets), 100 long segment names and a storm of long errors fit its row and read back', async () => {
    const repo = new RunsRepo(services().storage.table(TABLES.runs));
    const exportId = '7b1e8c3a-1111-4222-8333-444455556666';
    const run: RunRecord = {
      ...baseRun(exportId),
      buckets: { total: 4096, done: Array.from({ length: 4096 }, (_, b) => b).filter((b) => b % 3 !== 1) },
      segments: Object.fromEntries(
        Array.from({ length: 100 }, (_, i) => [`${'Segment'.repeat(36)}_${i}`, { rows: 123_456 + i }]),
      ),
      errors: Array.from(
        { length: 60 },
        (_, i) => `attempt ${i}: ${'Partition xyz is listed in model.json but missing; '.repeat(200)}`,
      ),
      warnings: ['x'.repeat(50_000)],
    };
    await repo.create(run);
    const back = (await repo.get(run.id)).value;
    expect(back.buckets).toEqual(run.buckets);
    expect(back.segments).toEqual(run.segments);
    expect(back.errors).toHaveLength(MAX_RUN_MESSAGES);
    expect(back.errors.at(-1)).toMatch(/^attempt 59: /); // the newest are kept
    for (const e of back.errors) expect(e.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);
    expect(back.warnings![0]!.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);
    // Updated again with fewer properties: nothing of the longer version is left behind.
    await repo.update({ ...run, segments: {}, errors: ['short'], warnings: [] });
    expect((await repo.get(run.id)).value).toMatchObject({ segments: {}, errors: ['short'], warnings: [] });
  });
});

describe("a worker's run writes", () => {
  it('a heartbeat queued behind the finishing write does not make the run running again', async () => {
    const repo = new RunsRepo(services().storage.table(TABLES.runs));
    const run = baseRun('7b1e8c3a-2222-4222-8333-444455556666');
    const created = await repo.create(run);
    const writer = new RunWriter(repo, run, created.etag);
    const done: RunRecord = { ...run, status: 'succeeded', finishedAt: new Date().toISOString() };
    // Both queued at once, as the heartbeat timer can fire while the last write is under way.
    await Promise.all([writer.write(done), writer.write({ ...run, heartbeatAt: new Date().toISOString() })]);
    expect((await repo.get(run.id)).value.status).toBe('succeeded');
  });
});

describe('run history pages', () => {
  it('GET …/runs gives 50 runs, newest first, and a nextLink to the rest; a made-up token is a 400', async () => {
    const app = services();
    const repo = new RunsRepo(app.storage.table(TABLES.runs));
    const conn = await app.connections.create(ADMIN, {
      displayName: `Paging ${Date.now()}`,
      restEndpoint: 'rest.iad-03.braze.com',
      apiKey: 'k'.repeat(36),
      consent: true,
    });
    const exp = (await app.exports.create(ADMIN, sampleExportBody(conn.value.id))).value;
    const started = Date.now() - 60_000;
    for (let i = 0; i < 57; i++)
      await repo.create({ ...baseRun(exp.id), id: newRunId(exp.id, started + i * 1000), status: 'succeeded' });
    const first = await call(exportRuns, { method: 'GET', path: `exports/${exp.id}/runs`, params: { id: exp.id } });
    expect(first.status).toBe(200);
    expect(first.body.value).toHaveLength(50);
    // Newest first: run ids sort by time, newest lowest.
    const ids = first.body.value.map((r: { id: string }) => r.id);
    expect(ids).toEqual([...ids].sort());
    const next = new URL(first.body.nextLink, 'http://x');
    const rest = await call(exportRuns, {
      method: 'GET',
      path: `exports/${exp.id}/runs`,
      params: { id: exp.id },
      query: { continuationToken: next.searchParams.get('continuationToken')! },
    });
    expect(rest.body.value).toHaveLength(7);
    expect(rest.body.nextLink).toBeUndefined();
    const all = [...first.body.value, ...rest.body.value].map((r: { id: string }) => r.id);
    expect(new Set(all).size).toBe(57);
    const bad = await call(exportRuns, {
      method: 'GET',
      path: `exports/${exp.id}/runs`,
      params: { id: exp.id },
      query: { continuationToken: 'not-a-token' },
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/continuationToken/);
  });
});
