// A worker killed after a bucket's state is written and before the run row lists the bucket done:
// the next attempt of the run finds the bucket's state written by its own run. It must neither send
// that bucket again nor count it differently from the attempt that sent it.
import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { runExport, type EngineResult, type RunProgress } from '../../shared/engine';
import type { WeighedRun } from '../../shared/engine';
import { useAzurite } from '../helpers/app';
import { rows } from '../helpers/ci-export';
import { newExportInput, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

const refusals = (r: EngineResult) => r.rejectedRows.map((row) => `${row.profileId}: ${row.reason}`).sort();

/**
 * A run of `count` profiles, those `refused` names refused by Braze (2xx errors[].index), sent whole
 * by one attempt; returned with the run row as a worker killed after every bucket's state write, and
 * before any run-row write that lists a bucket, leaves it.
 */
async function sentThenKilled(count: number, refused: (i: number) => boolean, bucketTargetBytes?: number) {
  sandbox().setFaults({ objectErrorMarker: 'ODD' });
  const input = await newExportInput(sandbox().url, [
    { segment: 'S', partitions: [rows(count, { name: (i) => (refused(i) ? 'ODD' : `N${i}`) })] },
  ]);
  const runId = randomUUID();
  let lastRunRow: RunProgress | null = null;
  const first = await runExport({
    ...input,
    runId,
    bucketTargetBytes,
    onProgress: (p) => void (lastRunRow ??= p.phase === 'sending' ? structuredClone(p) : null),
  });
  expect(first.complete).toBe(true);
  expect(lastRunRow!.buckets.done).toEqual([]);
  const again = { ...input, runId, bucketTargetBytes, resumeFrom: lastRunRow! };
  return { input, first, again, requestsBefore: sandbox().stats.requests };
}

describe('an attempt after a kill between a bucket’s state and the run row', () => {
  it('counts the buckets whose state its run wrote as that attempt did, and sends none of them again', async () => {
    const { input, first, again, requestsBefore } = await sentThenKilled(300, (i) => i % 3 === 0, 2048); // a dozen buckets or more
    expect(first.progress.counts).toMatchObject({ profiles: 300, sent: 200, rejected: 100, unchanged: 0, failed: 0 });

    const resumed = await runExport(again);
    expect(resumed.complete).toBe(true);
    expect(resumed.progress.counts).toMatchObject({ profiles: 300, sent: 200, rejected: 100, unchanged: 0, failed: 0 });
    expect(refusals(resumed)).toEqual(refusals(first));
    expect(refusals(resumed)).toHaveLength(100);
    expect(sandbox().stats.requests).toBe(requestsBefore);

    // Another run is not that run: its profiles are unchanged, and what Braze refused is tried again.
    const next = await runExport({ ...input, runId: randomUUID(), bucketTargetBytes: 2048 });
    expect(next.progress.counts).toMatchObject({ profiles: 300, sent: 0, rejected: 100, unchanged: 200 });
    expect(sandbox().stats.objectsReceived).toBe(300 + 100);
  });

  it('weighed again (its run row holds no bucket yet), the guard sees those buckets as sent, with nothing left to send', async () => {
    const { again, requestsBefore } = await sentThenKilled(300, (i) => i % 3 === 0, 2048);
    let weighed: WeighedRun | null = null;
    let objectsWeighed = 0;
    const resumed = await runExport({
      ...again,
      weigh: {
        deadline: Date.now() + 60_000,
        object: () => void objectsWeighed++,
        decide: async (run) => {
          weighed = run;
          return true;
        },
      },
    });
    expect(weighed).toMatchObject({ unweighed: null, objects: 0, requests: 0 });
    expect(weighed!.counts).toMatchObject({ profiles: 300, sent: 200, rejected: 100, unchanged: 0 });
    expect(objectsWeighed).toBe(0);
    expect(resumed.progress.counts).toMatchObject({ profiles: 300, sent: 200, rejected: 100, unchanged: 0 });
    expect(sandbox().stats.requests).toBe(requestsBefore);
  });

  it('the export edited between the attempts: its buckets are sent again under the new settings, not taken as they were', async () => {
    const { again, requestsBefore } = await sentThenKilled(300, (i) => i % 3 === 0, 2048);
    const { matching } = again.definition;
    const edited = {
      ...again.definition,
      matching: { ...matching, attributes: { ...matching.attributes, nickname: 'FirstName' } },
    };
    const resumed = await runExport({ ...again, definition: edited });
    expect(resumed.progress.counts).toMatchObject({ profiles: 300, sent: 200, rejected: 100, unchanged: 0 });
    expect(sandbox().stats.requests).toBeGreaterThan(requestsBefore);
    expect(sandbox().profiles.get('external_id:u1')?.attributes.nickname).toBe('N1');
  });

  it('a bucket with more refusals than its state keeps reasons for: every one still counted, the first ones reported', async () => {
    // One bucket, 900 of 1,200 profiles refused: more than the 32 K characters of ids and reasons kept.
    const { first, again } = await sentThenKilled(1200, (i) => i % 4 !== 0);
    expect(first.progress.counts).toMatchObject({ profiles: 1200, sent: 300, rejected: 900 });
    const resumed = await runExport(again);
    expect(resumed.progress.counts).toMatchObject({ profiles: 1200, sent: 300, rejected: 900 });
    expect(resumed.rejectedRowsTotal).toBe(first.rejectedRowsTotal);
    const reported = refusals(resumed);
    expect(reported.length).toBeGreaterThan(500);
    expect(reported.length).toBeLessThan(900);
    for (const line of reported) expect(refusals(first)).toContain(line);
  });
});
