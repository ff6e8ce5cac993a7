// The queue worker stops itself before its time budget, checkpoints, and the continuation finishes:
// on the bucket-by-bucket path here; a first run that sends during reading in engine.timebox-early.test.ts.
import { describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { ADMIN, createConnection, createExport, runNow, useSandbox } from '../helpers/engine';
import { queueRun } from '../helpers/worker-runs';

useAzurite({ WORKER_TIME_BUDGET_SECONDS: '1', SYNC_BUCKET_TARGET_BYTES: '4096' });
const sandbox = useSandbox();

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
    const id = await queueRun(exp.id);
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
});
