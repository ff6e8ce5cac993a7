// A run row never outgrows what Table Storage takes, however long or troubled the run.
import { describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { TABLES } from '../../shared/store/clients';
import { MAX_MESSAGE_CHARS, MAX_RUN_MESSAGES, newRunId, RunsRepo, type RunRecord } from '../../shared/store/runs';
import { RunWriter } from '../../shared/runs/run-writer';
import { useAzurite } from '../helpers/app';

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
