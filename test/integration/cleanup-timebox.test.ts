// A cleanup run honours the worker's time box like an export run: it stops between buckets, is
// queued again and goes on from the next bucket, every profile withdrawn once, counts added up
// across attempts. On Azurite and the Braze sandbox.
import { describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { RunWorker } from '../../shared/runs/worker';
import { ADMIN, createConnection, createExport, useSandbox } from '../helpers/engine';

useAzurite({ WORKER_TIME_BUDGET_SECONDS: '1', SYNC_BUCKET_TARGET_BYTES: '4096' });
const sandbox = useSandbox();

describe('time-boxed cleanup', () => {
  it('continues over several attempts and withdraws every profile exactly once', async () => {
    const app = services();
    const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(2000)] }]);
    const conn = await createConnection(sandbox().url, { requestBudget: 3000 });
    const exp = await createExport(conn.id, { source, segments: ['S'], matching: MATCHING });
    // The export run itself is not time-boxed here: this test is about the cleanup's time box.
    const deps = (app.worker as unknown as { deps: ConstructorParameters<typeof RunWorker>[0] }).deps;
    const outcome0 = await app.runs.runNow(ADMIN, exp.id, false);
    if (!('queued' in outcome0)) throw new Error('expected a queued run');
    await new RunWorker({ ...deps, timeBudgetMs: 60_000 }).execute(outcome0.queued.id, () => undefined);
    expect((await app.runs.get(outcome0.queued.id)).status).toBe('succeeded');
    // A low budget: the 27 withdrawal requests need several of its 3-second windows.
    await app.connections.update(ADMIN, conn.id, { requestBudget: 30 }, null);
    const processed = sandbox().stats.objectsProcessed;
    const outcome = await app.exports.delete(ADMIN, exp.id, null);
    if (!('cleanupRun' in outcome)) throw new Error('expected a cleanup run');
    await app.storage.runQueue.clearMessages();
    const logs: string[] = [];
    let run = await app.runs.get(outcome.cleanupRun.id);
    for (let i = 0; i < 30 && ['queued', 'running'].includes(run.status); i++) {
      await app.worker.execute(run.id, (l) => logs.push(l));
      run = await app.runs.get(run.id);
    }
    expect(run.status).toBe('succeeded');
    expect(run.attempts).toBeGreaterThanOrEqual(2);
    expect(logs.join('\n')).toMatch(/cleanup stopped after \d+ buckets \(time box\); continuation queued/);
    expect(run.counts).toMatchObject({ profiles: 2000, removed: 2000, removalsFailed: 0 });
    expect(run.requests!.sent).toBeGreaterThanOrEqual(27);
    expect(sandbox().stats.objectsProcessed - processed).toBe(2000);
    expect(
      sandbox()
        .profileList()
        .filter((p) => '0000-0000-0000' in p.attributes),
    ).toEqual([]);
    await expect(app.exports.get(exp.id)).rejects.toMatchObject({ status: 404 });
  }, 60_000);
});
