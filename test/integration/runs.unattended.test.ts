// Left alone in a customer's subscription: every run ends, one worker per run, one budget per
// Braze rate limit. On Azurite and the project's Braze sandbox, with workers run in this process
// as the queue would run them (messages may come twice, workers may lose their lease).
import { beforeEach, describe, expect, it } from 'vitest';
import { exportWorkerPoison } from '../../functions/exportWorkerPoison';
import { runCancel } from '../../functions/runCancel';
import { InvocationContext } from '@azure/functions';
import { MAX_TROUBLED_ATTEMPTS } from '../../shared/runs/worker';
import { services } from '../../shared/services';
import { CONTAINERS } from '../../shared/store/clients';
import { call, useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { ADMIN, createConnection, createExport, runNow, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

const noLog = () => undefined;

/** Queues a run of the export and takes its message off the queue: the test plays the worker. */
async function queueRun(exportId: string, fullSync = false): Promise<string> {
  const app = services();
  const outcome = await app.runs.runNow(ADMIN, exportId, fullSync);
  if (!('queued' in outcome)) throw new Error(`a run is already ${outcome.active.status}`);
  await app.storage.runQueue.clearMessages();
  return outcome.queued.id;
}

async function exportOf(profiles: number, connection: Record<string, unknown> = {}) {
  const app = services();
  const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(profiles)] }]);
  const conn = await createConnection(sandbox().url, connection);
  return { exp: await createExport(conn.id, { source, segments: ['S'], matching: MATCHING }), source, conn };
}

const until = async (what: () => boolean | Promise<boolean>, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** The export takes new runs again (no active run holds it). */
async function exportIsFree(exportId: string): Promise<boolean> {
  return !(await services().exports.view((await services().exports.get(exportId)).value)).lastRun
    ? true
    : await services()
        .storage.table('exports')
        .getEntity<{ data: string }>('state', exportId)
        .then((e) => JSON.parse(e.data).activeRunId === null);
}

describe('every run ends', () => {
  it('an error that repeats ends the run failed after the attempt cap, with its reason, and frees the export', async () => {
    const app = services();
    const { exp } = await exportOf(20);
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
    const { exp } = await exportOf(5);
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
    const { exp } = await exportOf(30);
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
    const { exp } = await exportOf(5);
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
    const { exp, source } = await exportOf(3000);
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

describe('one worker per run', () => {
  it('a worker that loses its lease stops; the new owner finishes; Braze gets each profile at most once more', async () => {
    const app = services();
    const { exp } = await exportOf(3000, { requestBudget: 30 });
    const runId = await queueRun(exp.id);
    const logsA: string[] = [];
    const workerA = app.worker.execute(runId, (l) => logsA.push(l));
    await until(() => sandbox().stats.objectsProcessed >= 300);
    // Another instance takes over (the lease was broken: say the first one stalled past its lease).
    await app.storage.appBlobs.getContainerClient(CONTAINERS.leases).getBlobClient(exp.id).getBlobLeaseClient().breakLease(0);
    const sentBeforeTakeover = sandbox().stats.objectsProcessed;
    await app.connections.update(ADMIN, exp.connectionId!, { requestBudget: 3000 }, null);
    const workerB = app.worker.execute(runId, noLog);
    await workerA;
    expect(logsA.join('\n')).toMatch(/lease .* was lost|taken over/);
    let run = await app.runs.get(runId);
    for (let i = 0; i < 10 && !['succeeded', 'failed', 'partially_succeeded', 'cancelled'].includes(run.status); i++) {
      await workerB;
      run = await app.runs.get(runId);
      if (run.status === 'queued' || run.status === 'running') await app.worker.execute(runId, noLog);
    }
    expect(run.status).toBe('succeeded');
    expect(run.counts).toMatchObject({ profiles: 3000, failed: 0 });
    expect(sandbox().profiles.size).toBe(3000);
    for (const p of sandbox().profiles.values()) expect(p.updates).toBeLessThanOrEqual(2);
    // The first worker stopped within about one lease renewal (2 s) of the takeover: at its budget
    // of 10 requests a second, no more than ~20 batches went out after it; the rest came from B once.
    expect(sandbox().stats.objectsProcessed).toBeLessThanOrEqual(3000 + sentBeforeTakeover + 20 * 75);
  }, 60_000);

  it('a long 429 wait keeps the run alive: its heartbeat moves on while nothing is sent', async () => {
    const app = services();
    const { exp } = await exportOf(100);
    sandbox().setFaults({ rateLimitForMs: 12_000 });
    const runId = await queueRun(exp.id);
    const working = app.worker.execute(runId, noLog);
    await until(async () => (await app.runs.get(runId)).status === 'running');
    const first = (await app.runs.get(runId)).heartbeatAt!;
    await new Promise((r) => setTimeout(r, 7000));
    expect(sandbox().stats.objectsProcessed).toBe(0);
    expect(new Date((await app.runs.get(runId)).heartbeatAt!).getTime()).toBeGreaterThan(new Date(first).getTime() + 4000);
    await working;
    expect((await app.runs.get(runId)).status).toBe('succeeded');
  }, 60_000);
});

describe('one budget per Braze rate limit', () => {
  it('three exports on one connection together stay within its budget', async () => {
    const app = services();
    const conn = await createConnection(sandbox().url, { requestBudget: 30 });
    const exports = [];
    for (let k = 0; k < 3; k++) {
      const source = await writeCiExport(app.storage.ciBlobs, [
        { segment: 'S', partitions: [rows(1500, { from: k * 10_000 + 1 })] },
      ]);
      exports.push(await createExport(conn.id, { source, segments: ['S'], matching: MATCHING }));
    }
    const runIds = [];
    for (const e of exports) runIds.push(await queueRun(e.id));
    // All three messages arrive at once (as on three instances); whoever does not get the limit waits.
    const pending = new Set(runIds);
    let waited = false;
    while (pending.size) {
      await Promise.all([...pending].map((id) => app.worker.execute(id, noLog)));
      for (const id of [...pending]) {
        const run = await app.runs.get(id);
        if (run.waitingFor) waited = true;
        if (run.status === 'succeeded') pending.delete(id);
      }
    }
    expect(waited).toBe(true);
    expect(sandbox().stats.objectsProcessed).toBe(4500);
    expect(sandbox().maxRequestsInWindow(3000)).toBeLessThanOrEqual(30);
  }, 90_000);

  it('connections an Admin puts in one rate-limit group share one budget', async () => {
    const app = services();
    const group = `company-${Date.now()}`;
    const runIds = [];
    for (let k = 0; k < 2; k++) {
      const conn = await createConnection(sandbox().url, { requestBudget: 30, rateLimitGroup: group });
      const source = await writeCiExport(app.storage.ciBlobs, [
        { segment: 'S', partitions: [rows(1500, { from: k * 10_000 + 1 })] },
      ]);
      runIds.push(await queueRun((await createExport(conn.id, { source, segments: ['S'], matching: MATCHING })).id));
    }
    const pending = new Set(runIds);
    while (pending.size) {
      await Promise.all([...pending].map((id) => app.worker.execute(id, noLog)));
      for (const id of [...pending]) if ((await app.runs.get(id)).status === 'succeeded') pending.delete(id);
    }
    expect(sandbox().stats.objectsProcessed).toBe(3000);
    expect(sandbox().maxRequestsInWindow(3000)).toBeLessThanOrEqual(30);
  }, 90_000);
});
