// A bucket's sync state is asked for only where some was there before the run: a first run has none
// to ask for, and each request was a 404 and a listing, per bucket. One that sends early writes
// checkpoints of what it sent, whose lines are in its own temp files: downloading them again cost
// a wide 1 M first run 22 MB through the blob service.
import os from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runExport, SyncStateStore } from '../../shared/engine';
import { useAzurite } from '../helpers/app';
import { rows } from '../helpers/ci-export';
import { newExportInput, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();

/** A new export of two segments, in a dozen buckets or more. */
const newExport = async () => ({
  ...(await newExportInput(sandbox().url, [
    { segment: 'A', partitions: [rows(300)] },
    { segment: 'B', partitions: [rows(150)] },
  ])),
  bucketTargetBytes: 2048,
});

describe("a bucket's sync state", () => {
  afterEach(() => vi.restoreAllMocks());

  it('is not asked for by a first run that reads before it sends; the next run asks for every bucket’s, and finds them', async () => {
    const input = await newExport();
    const asked = vi.spyOn(SyncStateStore.prototype, 'downloadBucket');

    const first = await runExport(input);
    expect(first.complete).toBe(true);
    expect(first.progress.counts).toMatchObject({ profiles: 300, sent: 300 });
    expect(first.progress.buckets.total).toBeGreaterThan(6);
    expect(asked).not.toHaveBeenCalled();

    const again = await runExport(input);
    expect(again.progress.counts).toMatchObject({ profiles: 300, unchanged: 300, sent: 0 });
    expect(asked).toHaveBeenCalledTimes(again.progress.buckets.total);
    const found = await Promise.all(asked.mock.results.map((r) => r.value as Promise<{ found: boolean }>));
    expect(found.every((f) => f.found)).toBe(true);
  });

  it('is not asked for by a first run that sends early; its checkpoints are gone and the next run finds every profile', async () => {
    vi.spyOn(os, 'availableParallelism').mockReturnValue(2);
    const input = await newExport();
    const asked = vi.spyOn(SyncStateStore.prototype, 'downloadBucket');
    const checkpointed = vi.spyOn(SyncStateStore.prototype, 'writeEarlyCheckpoint');

    const first = await runExport({ ...input, firstAttempt: true, earlyCheckpointMs: 1 });
    expect(first.progress.counts).toMatchObject({ profiles: 300, sent: 300 });
    expect(checkpointed).toHaveBeenCalled();
    expect(asked).not.toHaveBeenCalled();
    expect(await input.state.earlyCheckpointNames()).toEqual([]);

    const again = await runExport(input);
    expect(again.progress.counts).toMatchObject({ profiles: 300, unchanged: 300, sent: 0 });
  });
});
