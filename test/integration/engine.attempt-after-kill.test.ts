// A worker killed after a bucket's state is written and before the run row lists the bucket done:
// the next attempt of the run finds the bucket's state written by its own run. It must neither send
// that bucket again nor count it differently from the attempt that sent it.
import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { runExport, type RunProgress } from '../../shared/engine';
import { useAzurite } from '../helpers/app';
import { rows } from '../helpers/ci-export';
import { newExportInput, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

describe('an attempt after a kill between a bucket’s state and the run row', () => {
  it('counts the buckets whose state its run wrote as that attempt did, and sends none of them again', async () => {
    // Every third profile is refused by Braze (2xx errors[].index), with its reason.
    sandbox().setFaults({ objectErrorMarker: 'ODD' });
    const input = await newExportInput(sandbox().url, [
      { segment: 'S', partitions: [rows(300, { name: (i) => (i % 3 ? `N${i}` : 'ODD') })] },
    ]);
    const runId = randomUUID();
    // The run row as the killed worker last wrote it: reading done, no bucket listed yet.
    let lastRunRow: RunProgress | null = null;
    const first = await runExport({
      ...input,
      runId,
      bucketTargetBytes: 2048, // a dozen buckets or more
      onProgress: (p) => void (lastRunRow ??= p.phase === 'sending' ? structuredClone(p) : null),
    });
    expect(first.complete).toBe(true);
    expect(first.progress.counts).toMatchObject({ profiles: 300, sent: 200, rejected: 100, unchanged: 0, failed: 0 });
    expect(lastRunRow!.buckets.done).toEqual([]);
    const requestsBefore = sandbox().stats.requests;

    const again = await runExport({ ...input, runId, bucketTargetBytes: 2048, resumeFrom: lastRunRow! });
    expect(again.complete).toBe(true);
    expect(again.progress.counts).toMatchObject({ profiles: 300, sent: 200, rejected: 100, unchanged: 0, failed: 0 });
    const refusals = (r: typeof first) => r.rejectedRows.map((row) => `${row.profileId}: ${row.reason}`).sort();
    expect(refusals(again)).toEqual(refusals(first));
    expect(refusals(again)).toHaveLength(100);
    expect(sandbox().stats.requests).toBe(requestsBefore);

    // Another run is not that run: its profiles are unchanged, and what Braze refused is tried again.
    const next = await runExport({ ...input, runId: randomUUID(), bucketTargetBytes: 2048 });
    expect(next.progress.counts).toMatchObject({ profiles: 300, sent: 0, rejected: 100, unchanged: 200 });
    expect(sandbox().stats.objectsReceived).toBe(300 + 100);
  });
});
