// Left alone in a customer's subscription, every run ends and a cancel stops it. On Azurite and the
// project's Braze sandbox, with workers run in this process as the queue would run them (messages
// may come twice).
import { beforeEach, describe, expect, it } from 'vitest';
import { exportWorkerPoison } from '../../functions/exportWorkerPoison';
import { runCancel } from '../../functions/runCancel';
import { InvocationContext } from '@azure/functions';
import { MAX_TROUBLED_ATTEMPTS } from '../../shared/runs/worker';
import { services } from '../../shared/services';
import { CONTAINERS } from '../../shared/store/clients';
import { call, useAzurite } from '../helpers/app';
import { rows, writeCiExport } from '../helpers/ci-export';
import { ADMIN, runNow, useSandbox } from '../helpers/engine';
import { exportIsFree, exportOf, noLog, queueRun, until } from '../helpers/worker-runs';

useAzurite();
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

describe('every run ends', () => {
  it('an error that repeats ends the run failed after the attempt cap, with its reason, and frees the export', async () => {
    const app = services();
    const { exp } = await exportOf(sandbox(), 20);
    // A sync-state manifest that cannot be read: every attempt fails the same way.
    await app.storage.appBlobs
      .getContainerClient(CONTAINERS.state)
      .getBlockBlobClient(`${exp.id}/manifest.json`)
      .upload('{"bucketCount":', 15);
    const runId = await queueRun(exp.id);
    for (let i = 0; i < MAX_TROUBLED_ATTEMPTS; i++) await expect(app.worker.execute(runId, noLog)).rejects.toThrow(/JSON/);
    // The next delivery of the message (the queue's retry, or the timer's re-queue) gives up.
    await app.worker.execute(runId, noLog);
    const run = await app.runs.get(runId);
    expect(run.status).toBe('failed');
    expect(run.errors.at(-1)).toMatch(
      new RegExp(
        `Gave up after ${MAX_TROUBLED_ATTEMPTS} attempts that did not finish; the last: attempt ${MAX_TROUBLED_ATTEMPTS}: .*JSON`,
      ),
    );
    expect(await exportIsFree(exp.id)).toBe(true);
    expect(sandbox().stats.requests).toBe(0);
  });

  it('a message that reaches export-runs-poison marks its run failed and frees the export', async () => {
    const { exp } = await exportOf(sandbox(), 5);
    const runId = await queueRun(exp.id);
    const logs: string[] = [];
    const context = new InvocationContext({
      invocationId: 'poison',
      functionName: 'exportWorkerPoison',
      logHandler: (_l, ...a) => logs.push(a.join(' ')),
    });
    await exportWorkerPoison({ runId }, context);
    const run = await services().runs.get(runId);
    expect(run.status).toBe('failed');
    expect(run.errors.at(-1)).toMatch(/export-runs-poison/);
    expect(await exportIsFree(exp.id)).toBe(true);
    // A second copy changes nothing.
    await exportWorkerPoison({ runId }, context);
    expect((await services().runs.get(runId)).finishedAt).toBe(run.finishedAt);
  });

  it('a duplicate message for a finished run changes nothing: no request, counts kept', async () => {
    const { exp } = await exportOf(sandbox(), 30);
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    const requests = sandbox().stats.requests;
    await services().worker.execute(run.id, noLog);
    expect(sandbox().stats.requests).toBe(requests);
    expect(await services().runs.get(run.id)).toEqual(run);
  });
});

describe('cancel', () => {
  it('a queued run is cancelled at once; a Viewer may not cancel; a finished run answers 409', async () => {
    const { exp } = await exportOf(sandbox(), 5);
    const runId = await queueRun(exp.id);
    const asViewer = await call(runCancel, { method: 'POST', path: `runs/${runId}/cancel`, params: { runId }, as: 'Viewer' });
    expect(asViewer.status).toBe(403);
    const res = await call(runCancel, { method: 'POST', path: `runs/${runId}/cancel`, params: { runId }, as: 'Admin' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'cancelled', cancelRequested: { by: 'admin@example.com' } });
    expect(await exportIsFree(exp.id)).toBe(true);
    // Its message, still on its way, finds it finished.
    await services().worker.execute(runId, noLog);
    expect(sandbox().stats.requests).toBe(0);
    expect((await call(runCancel, { method: 'POST', path: `runs/${runId}/cancel`, params: { runId }, as: 'Admin' })).status).toBe(
      409,
    );
  });

  it('a running run stops within seconds; what Braze took is recorded, and the next run sends only the rest', async () => {
    const app = services();
    const { exp, source } = await exportOf(sandbox(), 3000);
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    // Every profile changes; a small budget (30 requests / 3 s) makes the run take ~4 s.
    await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(3000, { name: (i) => `Renamed${i}` })] }], {
      folder: source.folder,
    });
    const conn = (await app.exports.get(exp.id)).value.connectionId!;
    await app.connections.update(ADMIN, conn, { requestBudget: 30 }, null);
    sandbox().reset();
    const runId = await queueRun(exp.id);
    const working = app.worker.execute(runId, noLog);
    await until(() => sandbox().stats.objectsProcessed >= 600);
    const asked = Date.now();
    const res = await call(runCancel, { method: 'POST', path: `runs/${runId}/cancel`, params: { runId }, as: 'Admin' });
    expect(res.status).toBe(202);
    await working;
    expect(Date.now() - asked).toBeLessThan(6000);
    const run = await app.runs.get(runId);
    expect(run.status).toBe('cancelled');
    const delivered = sandbox().stats.objectsProcessed;
    expect(delivered).toBeLessThan(3000);
    expect(run.counts!.sent).toBe(delivered); // every answered batch was recorded
    expect(await exportIsFree(exp.id)).toBe(true);

    // The next run resumes from the recorded state: only the profiles not yet delivered go out.
    await app.connections.update(ADMIN, conn, { requestBudget: 3000 }, null);
    const next = await runNow(exp.id);
    expect(next.run.status).toBe('succeeded');
    expect(next.run.counts).toMatchObject({ sent: 3000 - delivered, unchanged: delivered });
    expect(sandbox().stats.objectsProcessed).toBe(3000);
    for (const p of sandbox().profiles.values()) expect(p.attributes.first_name).toMatch(/^Renamed/);
  }, 60_000);
});
