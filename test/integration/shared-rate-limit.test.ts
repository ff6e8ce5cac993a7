// Runs on one Braze rate limit take turns: a run that waits for the limit starts within seconds of
// it being free (not at the timer's stall check), and a run that loses the limit's lease stops
// sending. On Azurite (real queue, real leases) and the Braze sandbox; the test plays the Functions
// host's queue trigger.
import { BlobLeaseClient } from '@azure/storage-blob';
import { beforeEach, describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { CONTAINERS } from '../../shared/store/clients';
import { rateLimitLeaseName } from '../../shared/runs/worker';
import type { RunRecord } from '../../shared/store/runs';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { ADMIN, createConnection, createExport, runNow, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(async () => {
  sandbox().reset();
  await services().storage.runQueue.clearMessages();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Plays the queue trigger: takes messages as they become visible and runs them, several at once, until `done`. */
async function serveQueue(done: () => Promise<boolean>, ms = 25_000): Promise<void> {
  const app = services();
  const working = new Set<Promise<void>>();
  const end = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > end) throw new Error('timed out: the runs did not finish');
    const { receivedMessageItems } = await app.storage.runQueue.receiveMessages({ numberOfMessages: 8, visibilityTimeout: 120 });
    for (const m of receivedMessageItems) {
      const { runId } = JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as { runId: string };
      const work: Promise<void> = app.worker
        .execute(runId, () => undefined)
        .catch(() => undefined)
        .then(() => app.storage.runQueue.deleteMessage(m.messageId, m.popReceipt).then(() => undefined))
        .finally(() => working.delete(work));
      working.add(work);
    }
    await sleep(50);
  }
  await Promise.all(working);
}

async function twoExportsOnOneConnection() {
  const app = services();
  const conn = await createConnection(sandbox().url);
  const exports = [];
  for (let i = 0; i < 2; i++) {
    const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(150, { from: i * 1000 + 1 })] }]);
    exports.push(await createExport(conn.id, { source, segments: ['S'], matching: MATCHING }));
  }
  return { conn, exports };
}

describe('a run waiting for the shared Braze limit', () => {
  it('starts within seconds of the other run on the connection letting the limit go', async () => {
    const app = services();
    const { exports } = await twoExportsOnOneConnection();
    sandbox().setFaults({ slowMs: 1500 }); // the first run holds the limit for a while
    const ids: string[] = [];
    for (const exp of exports) {
      const outcome = await app.runs.runNow(ADMIN, exp.id, false);
      if (!('queued' in outcome)) throw new Error('expected a queued run');
      ids.push(outcome.queued.id);
    }
    const runs = async () => Promise.all(ids.map((id) => app.runs.get(id)));
    await serveQueue(async () => (await runs()).every((r) => r.status === 'succeeded'));
    const [first, second] = (await runs()).sort((a, b) => a.startedAt!.localeCompare(b.startedAt!)) as [RunRecord, RunRecord];
    // The second waited (it was queued while the first held the limit), then started right after it.
    expect(Date.parse(second.startedAt!)).toBeGreaterThanOrEqual(Date.parse(first.finishedAt!) - 1000);
    expect(Date.parse(second.startedAt!) - Date.parse(first.finishedAt!)).toBeLessThan(4000);
    expect(second.waitingFor).toBeNull();
    expect(sandbox().profiles.size).toBe(300);
  });
});

describe('losing the rate-limit lease', () => {
  it('stops sending like a lost export lease; the run continues once the limit is back, nothing cancelled', async () => {
    const app = services();
    const { conn, exports } = await twoExportsOnOneConnection();
    await app.connections.update(ADMIN, conn.id, { requestBudget: 1 }, null); // about one request every 3 s
    const outcome = await app.runs.runNow(ADMIN, exports[0]!.id, false);
    if (!('queued' in outcome)) throw new Error('expected a queued run');
    const runId = outcome.queued.id;
    await app.storage.runQueue.clearMessages(); // the test plays the worker
    const attempt = app.worker.execute(runId, () => undefined);
    while (sandbox().stats.requests < 1) await sleep(20);
    // Another party takes the connection's limit (its lease broken and taken over).
    const blob = app.storage.appBlobs.getContainerClient(CONTAINERS.leases).getBlockBlobClient(rateLimitLeaseName(conn));
    await blob.getBlobLeaseClient().breakLease(0);
    const thief = new BlobLeaseClient(blob);
    await thief.acquireLease(60);
    const stolenAt = Date.now();
    await attempt;
    const sentBefore = sandbox().stats.requests;
    expect(Date.now() - stolenAt).toBeLessThan(6000); // stopped within a lease renewal or two
    expect(sentBefore).toBe(1); // 150 profiles need 2 requests at 75: the second never went
    let run = await app.runs.get(runId);
    expect(run.status).not.toBe('cancelled');
    expect(sandbox().stats.requests).toBe(sentBefore);
    await thief.releaseLease();
    await app.connections.update(ADMIN, conn.id, { requestBudget: 3000 }, null);
    // Stopped mid-way, the run goes on once the limit is back (a first run that read everything
    // ends instead, the profiles not sent counted failed); the next run sends what is missing.
    for (let i = 0; i < 5 && unfinished((run = await app.runs.get(runId))); i++) await app.worker.execute(runId, () => undefined);
    expect(['succeeded', 'partially_succeeded']).toContain(run.status);
    if (run.status === 'partially_succeeded') expect(run.errors.join(' ')).toMatch(/rate limit/);
    expect(run.counts!.profiles).toBe(150);
    expect((await runNow(exports[0]!.id)).run.status).toBe('succeeded');
    expect(sandbox().profiles.size).toBe(150);
  });
});

const unfinished = (run: RunRecord) => run.status === 'queued' || run.status === 'running';
