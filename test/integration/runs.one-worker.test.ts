// Left alone in a customer's subscription, one worker per run: a worker that loses its lease stops,
// and a long wait for Braze keeps the run alive. Workers run in this process as the queue would run them.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetServices, services } from '../../shared/services';
import { CONTAINERS } from '../../shared/store/clients';
import { useAzurite } from '../helpers/app';
import { ADMIN, useSandbox } from '../helpers/engine';
import { exportOf, noLog, queueRun, until } from '../helpers/worker-runs';

useAzurite();
// Signs of life every second (the app's is every five): the long wait below is as telling in half the time.
beforeAll(() => resetServices({ brazeOptions: { backoffBaseMs: 20 }, heartbeatMs: 1000 }));
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

describe('one worker per run', () => {
  it('a worker that loses its lease stops; the new owner finishes; Braze gets each profile at most once more', async () => {
    const app = services();
    const { exp } = await exportOf(sandbox(), 3000, { requestBudget: 30 });
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

  it('a message that finds the export leased (a killed worker’s lease not yet run out) comes back later, and the run then starts', async () => {
    const app = services();
    const { exp } = await exportOf(sandbox(), 100);
    const runId = await queueRun(exp.id);
    // The lease a killed worker left: Azure lets it run out by itself within 15 s.
    const leaseBlob = app.storage.appBlobs.getContainerClient(CONTAINERS.leases).getBlockBlobClient(exp.id);
    await leaseBlob.upload('', 0).catch(() => undefined);
    const deadWorkersLease = leaseBlob.getBlobLeaseClient();
    await deadWorkersLease.acquireLease(15);
    const logs: string[] = [];
    await app.worker.execute(runId, (l) => logs.push(l));
    expect(logs.join('\n')).toMatch(/leased by another worker; retrying in 5 s/);
    expect((await app.runs.get(runId)).status).toBe('queued');
    expect(sandbox().stats.objectsProcessed).toBe(0);
    // The message is back on the queue, out of sight until the retry is due.
    expect((await app.storage.runQueue.getProperties()).approximateMessagesCount).toBe(1);
    expect((await app.storage.runQueue.peekMessages()).peekedMessageItems).toEqual([]);
    await deadWorkersLease.releaseLease();
    await app.storage.runQueue.clearMessages();
    await app.worker.execute(runId, noLog);
    expect((await app.runs.get(runId)).status).toBe('succeeded');
    expect(sandbox().profiles.size).toBe(100);
  });

  it('a long 429 wait keeps the run alive: its heartbeat moves on while nothing is sent', async () => {
    const app = services();
    const { exp } = await exportOf(sandbox(), 100);
    sandbox().setFaults({ rateLimitForMs: 6000 });
    const runId = await queueRun(exp.id);
    const working = app.worker.execute(runId, noLog);
    await until(async () => (await app.runs.get(runId)).status === 'running');
    const first = (await app.runs.get(runId)).heartbeatAt!;
    await new Promise((r) => setTimeout(r, 3000));
    expect(sandbox().stats.objectsProcessed).toBe(0);
    expect(new Date((await app.runs.get(runId)).heartbeatAt!).getTime()).toBeGreaterThan(new Date(first).getTime() + 1500);
    await working;
    expect((await app.runs.get(runId)).status).toBe('succeeded');
  }, 60_000);
});
