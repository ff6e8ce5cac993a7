// The last checkpoint of what was sent early is written while the buckets go, not before them: a
// wide 1 M first run's is 22 MB of state lines, and sending waited for it once five buckets waited
// for the run row.
import os from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runExport, SyncStateStore } from '../../shared/engine';
import { useAzurite } from '../helpers/app';
import { rows } from '../helpers/ci-export';
import { newExportInput, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();

describe('the last checkpoint of what was sent early', () => {
  afterEach(() => vi.restoreAllMocks());

  it('does not hold the buckets up: Braze has every profile before that checkpoint is written', async () => {
    vi.spyOn(os, 'availableParallelism').mockReturnValue(2);
    const input = {
      ...(await newExportInput(sandbox().url, [
        { segment: 'A', partitions: [rows(300)] },
        { segment: 'B', partitions: [rows(150)] },
      ])),
      bucketTargetBytes: 512,
    };
    // The blob service is slow to take the checkpoint's first piece: what Braze holds once the last is written.
    const write = SyncStateStore.prototype.writeEarlyPiece;
    const processedWhenWritten: number[] = [];
    vi.spyOn(SyncStateStore.prototype, 'writeEarlyPiece').mockImplementation(async function (this: SyncStateStore, ...args) {
      if (processedWhenWritten.length === 0) await new Promise((r) => setTimeout(r, 1000));
      await write.apply(this, args);
      processedWhenWritten.push(sandbox().stats.objectsProcessed);
    });
    const processedBefore = sandbox().stats.objectsProcessed;

    const run = await runExport({ ...input, firstAttempt: true });
    expect(run.progress.counts).toMatchObject({ profiles: 300, sent: 300 });
    expect(run.progress.buckets.total).toBeGreaterThan(10);
    expect(processedWhenWritten.length).toBeGreaterThan(1);
    expect(processedWhenWritten.at(-1)! - processedBefore).toBe(300);
    expect(await input.state.earlyCheckpointNames()).toEqual([]);

    const again = await runExport(input);
    expect(again.progress.counts).toMatchObject({ profiles: 300, unchanged: 300, sent: 0 });
  });
});
