// The queue worker stops itself before its time budget, checkpoints, and the continuation finishes.
import { describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { ADMIN, createConnection, createExport, mutableExport, runNow, useSandbox } from '../helpers/engine';

useAzurite({ WORKER_TIME_BUDGET_SECONDS: '1', SYNC_BUCKET_TARGET_BYTES: '4096' });
const sandbox = useSandbox();

/** A run of the export, queued; its queue message removed, so each attempt is the test's own `worker.execute`. */
async function queuedByHand(exportId: string): Promise<string> {
  const app = services();
  const outcome = await app.runs.runNow(ADMIN, exportId, false);
  if (!('queued' in outcome)) throw new Error('a run is already active');
  await app.storage.runQueue.clearMessages();
  return outcome.queued.id;
}

describe('time-boxed worker', () => {
  it('checkpoints, re-queues itself and completes over several attempts without losing or repeating profiles', async () => {
    const source = await writeCiExport(services().storage.ciBlobs, [{ segment: 'S', partitions: [rows(3000)] }]);
    // A small request budget: the run cannot promise to send early within the time box,
    // so it takes the bucket-by-bucket path this test is about; its 40 requests need two of the
    // budget's 3-second windows, so they cannot all go out within one attempt.
    const conn = await createConnection(sandbox().url, { requestBudget: 30 });
    const exp = await createExport(conn.id, { source, segments: ['S'], matching: MATCHING });
    sandbox().setFaults({ slowMs: 30 });
    const { run, logs } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.attempts).toBeGreaterThanOrEqual(2);
    expect(logs.join('\n')).toMatch(/time box reached after \d+\/\d+ buckets; continuation queued/);
    expect(run.counts).toMatchObject({ profiles: 3000, sent: 3000, failed: 0 });
    expect(sandbox().profiles.size).toBe(3000);
    // Each profile went out once: finished buckets were not sent again by the continuation.
    expect(sandbox().stats.objectsProcessed).toBe(3000);
  });

  it("a run resumed over several attempts reports every attempt's refusals, not only the last one's", async () => {
    const app = services();
    // Every 150th profile is one Braze refuses; they fall in many buckets, so in more than one attempt.
    const source = await writeCiExport(app.storage.ciBlobs, [
      { segment: 'S', partitions: [rows(1500, { name: (i) => (i % 150 === 0 ? 'POISON' : `N${i}`) })] },
    ]);
    const conn = await createConnection(sandbox().url, { requestBudget: 300 });
    const exp = await createExport(conn.id, { source, segments: ['S'], matching: MATCHING });
    sandbox().setFaults({ slowMs: 30, badObjectMarker: 'POISON' });
    const { run } = await runNow(exp.id);
    expect(run.attempts).toBeGreaterThanOrEqual(2);
    expect(run.counts).toMatchObject({ rejected: 10, sent: 1490 });
    const [container, ...name] = run.rejectedReport!.split('/');
    const csv = (
      await app.storage.appBlobs.getContainerClient(container!).getBlobClient(name.join('/')).downloadToBuffer()
    ).toString();
    const refused = csv
      .split('\n')
      .filter((l) => /Braze refused the object/.test(l))
      .map((l) => l.split(',')[3]);
    expect(refused.sort()).toEqual(Array.from({ length: 10 }, (_, k) => `c${(k + 1) * 150}`).sort());
  }, 60_000);

  it('a partition of the pinned snapshot deleted between attempts (CI retention) fails the run with a reason, once', async () => {
    const app = services();
    const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(3000)] }]);
    const conn = await createConnection(sandbox().url, { requestBudget: 30 });
    const exp = await createExport(conn.id, { source, segments: ['S'], matching: MATCHING });
    sandbox().setFaults({ slowMs: 30 });
    const id = await queuedByHand(exp.id);
    const logs: string[] = [];
    await app.worker.execute(id, (l) => logs.push(l));
    expect(logs.join('\n')).toMatch(/continuation queued/);
    // CI's retention removes the old snapshot before the continuation reads it again.
    for await (const blob of app.storage.ciBlobs
      .getContainerClient(source.container)
      .listBlobsFlat({ prefix: `${source.folder}/S/` })) {
      await app.storage.ciBlobs.getContainerClient(source.container).deleteBlob(blob.name);
    }
    await app.worker.execute(id, (l) => logs.push(l));
    const run = await app.runs.get(id);
    expect(run.status).toBe('failed');
    expect(run.errors.at(-1)).toMatch(/S_1\.csv of the snapshot this run is pinned to is gone.*run the export again/);
    // The export is free: a new run can start (and reports the missing snapshot itself).
    expect('queued' in (await app.runs.runNow(ADMIN, exp.id, false))).toBe(true);
    await app.storage.runQueue.clearMessages();
  });

  it('a first attempt that sends early stops sending at the time box; the continuation completes', async () => {
    const app = services();
    // Many partitions: the time box is looked at between downloaded chunks.
    const partitions = Array.from({ length: 15 }, (_, k) => rows(1000, { from: k * 1000 + 1 }));
    const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions }]);
    const conn = await createConnection(sandbox().url);
    const exp = await createExport(conn.id, { source, segments: ['S'], matching: MATCHING });
    sandbox().reset();
    const id = await queuedByHand(exp.id);
    const logs: string[] = [];

    // Slow answers: the 1 s time box ends while the profiles are still being sent during reading.
    sandbox().setFaults({ slowMs: 800 });
    await app.worker.execute(id, (l) => logs.push(l));
    expect(logs.join('\n')).toMatch(/time box reached after 0\/\d+ buckets; continuation queued/);
    const sentEarly = sandbox().stats.objectsProcessed;
    expect(sentEarly).toBeGreaterThan(0);
    expect(sentEarly).toBeLessThan(15_000);

    sandbox().setFaults({ slowMs: 0 });
    let run = await app.runs.get(id);
    for (let i = 0; i < 60 && (run.status === 'running' || run.status === 'queued'); i++) {
      await app.worker.execute(id, (l) => logs.push(l));
      run = await app.runs.get(id);
    }
    expect(run.status).toBe('succeeded');
    expect(run.counts).toMatchObject({ profiles: 15_000, sent: 15_000, failed: 0 });
    expect(sandbox().profiles.size).toBe(15_000);

    // Every attempt's part is in the sync state: the same snapshot again sends nothing.
    sandbox().reset();
    const again = await runNow(exp.id);
    expect(again.run.counts).toMatchObject({ profiles: 15_000, sent: 0, unchanged: 15_000 });
    expect(sandbox().stats.requests).toBe(0);
  }, 90_000);

  it('a bucket the first attempt sent whole during reading is kept by the continuation, which has nothing to send in it', async () => {
    const app = services();
    const { exp, rewrite } = await mutableExport(sandbox().url, [{ segment: 'S', partitions: [rows(6)] }]);
    sandbox().reset();
    const id = await queuedByHand(exp.id);
    const logs: string[] = [];
    // Braze answers the one request after the 1 s time box: the first attempt ends with its
    // profiles checkpointed as sent early, and no bucket written.
    sandbox().setFaults({ slowMs: 1500 });
    await app.worker.execute(id, (l) => logs.push(l));
    expect(logs.join('\n')).toMatch(/time box reached after 0\/1 buckets; continuation queued/);
    expect(sandbox().profiles.size).toBe(6);
    sandbox().setFaults({ slowMs: 0 });
    let run = await app.runs.get(id);
    for (let i = 0; i < 20 && (run.status === 'running' || run.status === 'queued'); i++) {
      await app.worker.execute(id, (l) => logs.push(l));
      run = await app.runs.get(id);
    }
    expect(run).toMatchObject({ status: 'succeeded', counts: { profiles: 6, sent: 6 } });
    expect(sandbox().stats.objectsProcessed).toBe(6);

    // A new snapshot with one more profile: only that one goes, the six are known.
    sandbox().reset();
    await rewrite([{ segment: 'S', partitions: [rows(7)] }]);
    const next = await runNow(exp.id);
    expect(next.run.counts).toMatchObject({ profiles: 7, sent: 1, unchanged: 6 });
    expect(sandbox().stats.objectsProcessed).toBe(1);
  }, 60_000);
});
