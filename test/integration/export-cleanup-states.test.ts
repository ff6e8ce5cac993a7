// Deleting or detaching an export never puts its membership back into Braze: the export is
// `deleting` / `detaching` from the moment its cleanup run is queued; the timer, runs, previews and
// edits leave it alone; a failed or cancelled cleanup waits for a retry or a restore (which queues a
// full sync); a succeeded cleanup is finished by whoever sees it. Detach, like DELETE, is refused
// while a run is going. On Azurite and the Braze sandbox, workers played in this process.
import { beforeEach, describe, expect, it } from 'vitest';
import { exportDetach } from '../../functions/exportDetach';
import { exportItem } from '../../functions/exportItem';
import { exportPreview } from '../../functions/exportPreview';
import { exportRestore } from '../../functions/exportRestore';
import { exportRetryCleanup } from '../../functions/exportRetryCleanup';
import { exportRun } from '../../functions/exportRun';
import { runCancel } from '../../functions/runCancel';
import { services } from '../../shared/services';
import { RunWorker } from '../../shared/runs/worker';
import { call, useAzurite } from '../helpers/app';
import { rows } from '../helpers/ci-export';
import { ADMIN, mutableExport, runNow, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(async () => {
  sandbox().reset();
  await services().storage.runQueue.clearMessages();
});

const SEG = '0000-0000-0000';
const user = (key: string) => sandbox().profiles.get(key)?.attributes;
const noLog = () => undefined;

/** Plays the queue worker for a run the API queued. */
async function work(runId: string, worker = services().worker) {
  const app = services();
  await app.storage.runQueue.clearMessages();
  for (let i = 0; i < 10; i++) {
    await worker.execute(runId, noLog);
    const run = await app.runs.get(runId);
    if (!['queued', 'running'].includes(run.status)) return run;
  }
  throw new Error('run did not end');
}

const post = (handler: Parameters<typeof call>[0], id: string, action: string, query?: Record<string, string>) =>
  call(handler, { method: 'POST', path: `exports/${id}/${action}`, params: { id }, query });
const getExport = (id: string) => call(exportItem, { method: 'GET', path: `exports/${id}`, params: { id } });

/** An export that ran once (Braze holds its membership for c1..c3), then a DELETE whose cleanup Braze refuses. */
async function exportWithFailedCleanup(then: 'delete' | 'detach' = 'delete') {
  const m = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(3)] }]);
  await runNow(m.exp.id);
  sandbox().setFaults({ refuseEveryRequest: 'Workspace is under maintenance' });
  const res =
    then === 'delete'
      ? await call(exportItem, { method: 'DELETE', path: `exports/${m.exp.id}`, params: { id: m.exp.id } })
      : await post(exportDetach, m.exp.id, 'detach');
  expect(res.status).toBe(202);
  expect((await getExport(m.exp.id)).body.status).toBe(then === 'delete' ? 'deleting' : 'detaching');
  const cleanup = await work(res.body.cleanupRun.id);
  expect(cleanup.status).toBe('partially_succeeded');
  sandbox().setFaults({ refuseEveryRequest: '' });
  return { ...m, cleanup };
}

describe('a cleanup that did not succeed leaves the export deleting / detaching', () => {
  it('the timer skips it and runs, previews and PATCH answer 409 with the reason: nothing goes back to Braze', async () => {
    const app = services();
    const { exp, rewrite, cleanup } = await exportWithFailedCleanup();
    expect(cleanup.errors.at(-1)).toMatch(/retry-cleanup.*restore/);
    // It says why, as Braze said it.
    expect(cleanup.errors.at(-1)).toMatch(
      /^3 withdrawals could not be delivered \(Braze refused the request as a whole \(400: Workspace is under maintenance\);/,
    );
    const view = (await getExport(exp.id)).body;
    expect(view).toMatchObject({
      status: 'deleting',
      cleanup: {
        then: 'delete',
        run: { id: cleanup.id, status: 'partially_succeeded' },
        stuck: true,
        retry: `/api/exports/${exp.id}/retry-cleanup`,
        restore: `/api/exports/${exp.id}/restore`,
      },
    });
    // CI writes a new snapshot: the timer would queue an ordinary run of an active export.
    await rewrite([{ segment: 'A', partitions: [rows(4)] }]);
    const requests = sandbox().stats.requests;
    const summary = await app.scheduler.tick(new Date(Date.now() + 60 * 60_000), noLog);
    expect(summary.queued).not.toContain(exp.id);
    expect(summary.skipped).toContainEqual({ exportId: exp.id, reason: expect.stringMatching(/deleting/) });
    for (const res of [
      await post(exportRun, exp.id, 'run'),
      await post(exportPreview, exp.id, 'preview'),
      await call(exportItem, { method: 'PATCH', path: `exports/${exp.id}`, params: { id: exp.id }, body: { name: 'x' } }),
    ]) {
      expect(res.status).toBe(409);
      expect(res.body.error).toMatchObject({ code: 'export_cleanup_pending', cleanupRun: { id: cleanup.id } });
      expect(res.body.error.message).toMatch(/being deleted/);
    }
    expect(sandbox().stats.requests).toBe(requests);
    // The withdrawn users hold no membership; nobody put it back.
    expect(user('external_id:u4')).toBeUndefined();
  });

  it('a cancelled cleanup stays detaching too; retry-cleanup withdraws and detaches', async () => {
    const app = services();
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(3)] }]);
    await runNow(exp.id);
    const res = await post(exportDetach, exp.id, 'detach');
    const runId = res.body.cleanupRun.id as string;
    expect((await call(runCancel, { method: 'POST', path: `runs/${runId}/cancel`, params: { runId } })).status).toBe(202);
    expect((await getExport(exp.id)).body).toMatchObject({ status: 'detaching', cleanup: { run: { status: 'cancelled' } } });
    const tick = await app.scheduler.tick(new Date(Date.now() + 60 * 60_000), noLog);
    expect(tick.queued).not.toContain(exp.id);
    const retried = await post(exportRetryCleanup, exp.id, 'retry-cleanup');
    expect(retried.status).toBe(202);
    expect((await work(retried.body.cleanupRun.id)).status).toBe('succeeded');
    expect(user('external_id:u1')).not.toHaveProperty(SEG);
    expect((await getExport(exp.id)).body).toMatchObject({ status: 'inactive', connectionId: null });
  });

  it('restore makes it active again and queues a full sync that puts the membership back', async () => {
    const { exp } = await exportWithFailedCleanup();
    const res = await post(exportRestore, exp.id, 'restore');
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'active', fullSyncRun: { status: 'queued' } });
    expect(res.body.message).toMatch(/full sync/);
    expect(res.body.cleanup).toBeFalsy();
    const run = await work(res.body.fullSyncRun.id);
    expect(run).toMatchObject({ status: 'succeeded', fullSync: true });
    expect(user('external_id:u1')![SEG]).toEqual(['A']);
    // Restoring what is not being deleted is a 409.
    expect((await post(exportRestore, exp.id, 'restore')).status).toBe(409);
  });

  it('retry and restore are refused while the cleanup runs', async () => {
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(3)] }]);
    await runNow(exp.id);
    const res = await call(exportItem, { method: 'DELETE', path: `exports/${exp.id}`, params: { id: exp.id } });
    expect(res.status).toBe(202);
    expect((await post(exportRestore, exp.id, 'restore')).status).toBe(409);
    expect((await post(exportRetryCleanup, exp.id, 'retry-cleanup')).status).toBe(409);
    expect((await work(res.body.cleanupRun.id)).status).toBe('succeeded');
    expect((await getExport(exp.id)).status).toBe(404);
  });
});

describe('a succeeded cleanup is finished by whoever sees it', () => {
  /** A worker whose last step (delete / detach) fails, as a storage error or a kill between the two writes would. */
  function workerWhoseLastStepFails(): RunWorker {
    const deps = (services().worker as unknown as { deps: ConstructorParameters<typeof RunWorker>[0] }).deps;
    const fails = async () => {
      throw new Error('storage unavailable');
    };
    return new RunWorker({
      ...deps,
      exportsService: { completeCleanup: fails, deleteAfterCleanup: fails, detachAfterCleanup: fails } as never,
    });
  }

  it('the redelivered message deletes the export', async () => {
    const app = services();
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(2)] }]);
    await runNow(exp.id);
    const outcome = await app.exports.delete(ADMIN, exp.id, null);
    if (!('cleanupRun' in outcome)) throw new Error('expected a cleanup run');
    await expect(workerWhoseLastStepFails().execute(outcome.cleanupRun.id, noLog)).rejects.toThrow(/storage unavailable/);
    expect((await app.runs.get(outcome.cleanupRun.id)).status).toBe('succeeded');
    expect((await app.exports.get(exp.id)).value.status).toBe('deleting');
    // The queue delivers the message again.
    await app.worker.execute(outcome.cleanupRun.id, noLog);
    await expect(app.exports.get(exp.id)).rejects.toMatchObject({ status: 404 });
  });

  it('or the timer detaches it', async () => {
    const app = services();
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(2)] }]);
    await runNow(exp.id);
    const outcome = await app.exports.detach(ADMIN, exp.id, null);
    if (!('cleanupRun' in outcome)) throw new Error('expected a cleanup run');
    await expect(workerWhoseLastStepFails().execute(outcome.cleanupRun.id, noLog)).rejects.toThrow(/storage unavailable/);
    const requests = sandbox().stats.requests;
    await app.scheduler.tick(new Date(Date.now() + 60 * 60_000), noLog);
    expect((await app.exports.get(exp.id)).value).toMatchObject({ status: 'inactive', connectionId: null });
    expect(sandbox().stats.requests).toBe(requests);
    expect(user('external_id:u1')).not.toHaveProperty(SEG);
  });
});

describe('detach, like DELETE, waits for the run that is going', () => {
  it('409 with or without keepBrazeData while a run is queued; the run is left alone', async () => {
    const app = services();
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(2)] }]);
    const outcome = await app.runs.runNow(ADMIN, exp.id, false);
    if (!('queued' in outcome)) throw new Error('expected a queued run');
    for (const query of [{ keepBrazeData: 'true' }, undefined]) {
      const res = await post(exportDetach, exp.id, 'detach', query);
      expect(res.status).toBe(409);
      expect(res.body.error.activeRun.id).toBe(outcome.queued.id);
    }
    expect((await app.exports.get(exp.id)).value).toMatchObject({ status: 'active', connectionId: exp.connectionId });
    expect((await work(outcome.queued.id)).status).toBe('succeeded');
    // Once it is over, detach withdraws what that first run wrote.
    const res = await post(exportDetach, exp.id, 'detach');
    expect(res.status).toBe(202);
    expect((await work(res.body.cleanupRun.id)).counts).toMatchObject({ removed: 2 });
  });

  it('?keepBrazeData= takes only true or false (400 naming it), never a silent cleanup', async () => {
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(2)] }]);
    await runNow(exp.id);
    for (const value of ['yes', 'TRUE', '1', '']) {
      const del = await call(exportItem, {
        method: 'DELETE',
        path: `exports/${exp.id}`,
        params: { id: exp.id },
        query: { keepBrazeData: value },
      });
      expect(del.status).toBe(400);
      expect(del.body.error.issues).toEqual([{ path: 'keepBrazeData', message: 'must be true or false' }]);
      expect((await post(exportDetach, exp.id, 'detach', { keepBrazeData: value })).status).toBe(400);
    }
    expect((await getExport(exp.id)).body.status).toBe('active');
  });
});

describe('a run whose claim fails is not left queued', () => {
  it('the run row goes when the export state cannot be claimed', async () => {
    const app = services();
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(2)] }]);
    // An export state row nobody can read: the claim throws.
    await app.storage.table('exports').upsertEntity({ partitionKey: 'state', rowKey: exp.id, data: '{not json' }, 'Replace');
    const res = await post(exportRun, exp.id, 'run');
    expect(res.status).toBe(500);
    expect(await app.runs.listForExport(exp.id)).toEqual([]);
  });
});

describe('a cleanup that keeps the data', () => {
  it('picked up by a worker (as the stall check does when the delete could not finish at once) withdraws nothing', async () => {
    const m = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(3)] }]);
    await runNow(m.exp.id);
    const requestsBefore = sandbox().stats.requests;
    const app = services();
    const outcome = await app.runs.start(m.exp, 'manual', 'test', false, {
      cleanup: 'delete',
      keepBrazeData: true,
      queue: false,
    });
    if (!('queued' in outcome)) throw new Error('expected a queued cleanup run');
    expect(outcome.queued.keepBrazeData).toBe(true);
    const run = await work(outcome.queued.id);
    expect(run.status).toBe('succeeded');
    expect(sandbox().stats.requests).toBe(requestsBefore);
    expect(user('external_id:u1')![SEG]).toEqual(['A']);
  });
});
