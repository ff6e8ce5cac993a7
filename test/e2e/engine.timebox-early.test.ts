// A first run that sends during reading and reaches the queue worker's time box: it stops sending,
// checkpoints what it sent, and the continuation completes without sending it again (the
// bucket-by-bucket path is in engine.timebox.test.ts).
import os from 'node:os';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { services } from '../../shared/services';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { createConnection, createExport, mutableExport, runNow, useSandbox } from '../helpers/engine';
import { queueRun } from '../helpers/worker-runs';

useAzurite({ WORKER_TIME_BUDGET_SECONDS: '1', SYNC_BUCKET_TARGET_BYTES: '4096' });
const sandbox = useSandbox();
// As on two cores or more, whatever this machine has: on one, a first run at the test connections'
// budget (Braze's whole limit) reads first and sends nothing early.
beforeEach(() => vi.spyOn(os, 'availableParallelism').mockReturnValue(2));
afterEach(() => vi.restoreAllMocks());

describe('time-boxed worker, sending during reading', () => {
  // The small case first: the engine is warm when the large one's 1 s time box must end while it
  // still sends (cold, on a busy machine, its first attempt could reach the box before sending).
  it('a bucket the first attempt sent whole during reading is kept by the continuation, which has nothing to send in it', async () => {
    const app = services();
    const { exp, rewrite } = await mutableExport(sandbox().url, [{ segment: 'S', partitions: [rows(6)] }]);
    sandbox().reset();
    const id = await queueRun(exp.id);
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

  it('a first attempt that sends early stops sending at the time box; the continuation completes', async () => {
    const app = services();
    // Many partitions: the time box is looked at between downloaded chunks.
    const partitions = Array.from({ length: 15 }, (_, k) => rows(1000, { from: k * 1000 + 1 }));
    const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions }]);
    const conn = await createConnection(sandbox().url);
    const exp = await createExport(conn.id, { source, segments: ['S'], matching: MATCHING });
    sandbox().reset();
    const id = await queueRun(exp.id);
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
});
