// The queue worker stops itself before its time budget, checkpoints, and the continuation finishes.
import { describe, expect, it } from 'vitest';
import { services } from '../shared/services';
import { useAzurite } from './helpers/app';
import { MATCHING, rows, writeCiExport } from './helpers/ci-export';
import { createConnection, createExport, runNow, useSandbox } from './helpers/engine';

useAzurite({ WORKER_TIME_BUDGET_SECONDS: '1', SYNC_BUCKET_TARGET_BYTES: '4096' });
const sandbox = useSandbox();

describe('time-boxed worker', () => {
  it('checkpoints, re-queues itself and completes over several attempts without losing or repeating profiles', async () => {
    const source = await writeCiExport(services().storage.ciBlobs, [{ segment: 'S', partitions: [rows(1500)] }]);
    // A small request budget: the run cannot promise to send while reading within the time box,
    // so it takes the bucket-by-bucket path this test is about.
    const conn = await createConnection(sandbox().url, { requestBudget: 30 });
    const exp = await createExport(conn.id, { source, segments: ['S'], matching: MATCHING });
    sandbox().setFaults({ slowMs: 30 });
    const { run, logs } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.attempts).toBeGreaterThanOrEqual(2);
    expect(logs.join('\n')).toMatch(/time box reached after \d+\/\d+ buckets; continuation queued/);
    expect(run.counts).toMatchObject({ profiles: 1500, sent: 1500, failed: 0 });
    expect(sandbox().profiles.size).toBe(1500);
    // Each profile went out once: finished buckets were not sent again by the continuation.
    expect(sandbox().stats.objectsProcessed).toBe(1500);
  });
});
