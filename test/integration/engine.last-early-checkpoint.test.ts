// The last checkpoint of what was sent early is written while the buckets go, not before them: a
// wide 1 M first run's is 22 MB of state lines, and sending waited for it once five buckets waited
// for the run row. An attempt that stops still waits for it: it reads the attempt's temp files.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runExport, SyncStateStore, type EngineInput } from '../../shared/engine';
import { useAzurite } from '../helpers/app';
import { rows } from '../helpers/ci-export';
import { newExportInput, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(() => vi.spyOn(os, 'availableParallelism').mockReturnValue(2));
afterEach(() => vi.restoreAllMocks());

/** A new export: 150 of segment A's 300 profiles are in no other segment (sent early), in many buckets. */
const newExport = async (): Promise<EngineInput> => ({
  ...(await newExportInput(sandbox().url, [
    { segment: 'A', partitions: [rows(300)] },
    { segment: 'B', partitions: [rows(150)] },
  ])),
  bucketTargetBytes: 512,
  runId: randomUUID(),
});

const until = async (done: () => boolean, ms: number) => {
  for (const end = Date.now() + ms; !done() && Date.now() < end;) await new Promise((r) => setTimeout(r, 10));
};

/** The checkpoints' writes, the first held until `release` says so: how many began and ended. */
function holdFirstCheckpoint(release: () => boolean) {
  const write = SyncStateStore.prototype.writeEarlyCheckpoint;
  const checkpoints = { begun: 0, ended: 0, processedAtEnd: 0 };
  vi.spyOn(SyncStateStore.prototype, 'writeEarlyCheckpoint').mockImplementation(async function (this: SyncStateStore, ...args) {
    if (checkpoints.begun++ === 0) await until(release, 10_000);
    await write.apply(this, args);
    checkpoints.ended++;
    checkpoints.processedAtEnd = sandbox().stats.objectsProcessed;
  });
  return checkpoints;
}

describe('the last checkpoint of what was sent early', () => {
  it('does not hold the buckets up: Braze has every profile before that checkpoint is written', async () => {
    const input = await newExport();
    const before = sandbox().stats.objectsProcessed;
    // The blob service takes the checkpoint only once Braze has every profile (or after 10 s).
    const checkpoint = holdFirstCheckpoint(() => sandbox().stats.objectsProcessed - before >= 300);

    const run = await runExport({ ...input, firstAttempt: true });
    expect(run.progress.counts).toMatchObject({ profiles: 300, sent: 300 });
    expect(run.progress.buckets.total).toBeGreaterThan(10);
    // One checkpoint (when reading ended), one blob for its many buckets, written once Braze had every profile.
    expect(checkpoint.ended).toBe(1);
    expect(checkpoint.processedAtEnd - before).toBe(300);
    expect(await input.state.earlyCheckpointNames()).toEqual([]);

    const again = await runExport({ ...input, runId: randomUUID() });
    expect(again.progress.counts).toMatchObject({ profiles: 300, unchanged: 300, sent: 0 });
  });

  it('is written before an attempt that stops after a few buckets returns; the continuation sends nothing twice', async () => {
    const input = await newExport();
    const before = sandbox().stats.objectsProcessed;
    let read = false;
    let asked = 0;
    // The attempt's time box ends after three buckets; the checkpoint waits for that, and half a second more.
    let stoppedAt = Infinity;
    const checkpoint = holdFirstCheckpoint(() => Date.now() > stoppedAt + 500);
    const first = await runExport({
      ...input,
      firstAttempt: true,
      onProgress: (p) => void (read ||= p.phase !== 'reading'),
      shouldYield: () => {
        if (read && ++asked > 3) stoppedAt = Math.min(stoppedAt, Date.now());
        return asked > 3;
      },
    });
    expect(first.complete).toBe(false);
    expect(first.progress.buckets.done.length).toBeGreaterThan(0);
    expect(checkpoint.begun).toBe(1);
    expect(checkpoint.ended).toBe(1);
    expect(await input.state.earlyCheckpointNames()).toEqual([expect.stringMatching(/\/buckets\.early-0000\.0\.tsv$/)]);

    const second = await runExport({ ...input, firstAttempt: false, resumeFrom: first.progress });
    expect(second.complete).toBe(true);
    expect(second.progress.counts).toMatchObject({ profiles: 300, sent: 300, failed: 0 });
    expect(sandbox().stats.objectsProcessed - before).toBe(300);
    expect(await input.state.earlyCheckpointNames()).toEqual([]);
  });
});
