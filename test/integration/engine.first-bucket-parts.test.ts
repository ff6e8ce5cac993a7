// A first run that reads before it sends hands its first bucket to Braze a part at a time, as the
// engine thread writes it, instead of keeping Braze waiting for the whole bucket: every profile
// still reaches Braze once, the bucket's state is written whole, and a run stopped among the parts
// leaves the rest to the next run.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runExport } from '../../shared/engine';
import { BucketsAsked } from '../../shared/engine/run/buckets-asked';
import { PART_OBJECTS } from '../../shared/engine/run/object-parts';
import { useAzurite } from '../helpers/app';
import { rows } from '../helpers/ci-export';
import { newExportInput, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();

/** Profiles c1…c2099: A holds c1…c2000, B c1500…c2099. */
const PROFILES = 2099;

/** A new export of two overlapping segments, in one bucket. */
const newExport = async () => ({
  ...(await newExportInput(sandbox().url, [
    { segment: 'A', partitions: [rows(2000)] },
    { segment: 'B', partitions: [rows(600, { from: 1500 })] },
  ])),
  bucketTargetBytes: 1 << 30,
});

describe("a first run's first bucket", () => {
  beforeEach(() => sandbox().reset());
  afterEach(() => vi.restoreAllMocks());

  it('goes to Braze in parts, each profile once, and its state is written whole', async () => {
    const parts = vi.spyOn(BucketsAsked.prototype, 'part');
    const input = await newExport();

    const first = await runExport(input);
    expect(first.complete).toBe(true);
    expect(first.progress.buckets.total).toBe(1);
    expect(first.progress.counts).toMatchObject({ profiles: PROFILES, sent: PROFILES, failed: 0 });
    // Handed over whenever PART_OBJECTS are written; what is left comes with the bucket.
    expect(parts).toHaveBeenCalledTimes(Math.ceil(PROFILES / PART_OBJECTS) - 1);
    expect(sandbox().stats.objectsProcessed).toBe(PROFILES);
    expect(sandbox().profileList()).toHaveLength(PROFILES);
    expect(sandbox().stats.requests).toBe(Math.ceil(PROFILES / 75));

    parts.mockClear();
    const again = await runExport(input);
    expect(again.progress.counts).toMatchObject({ profiles: PROFILES, unchanged: PROFILES, sent: 0 });
    expect(parts).not.toHaveBeenCalled(); // a run with state sends its buckets whole
    expect(sandbox().stats.objectsProcessed).toBe(PROFILES);
  });

  it('stopped among its parts, counts what Braze took; the next run sends only the rest', async () => {
    const parts = vi.spyOn(BucketsAsked.prototype, 'part');
    const input = await newExport();

    // Asked before every object: true from the second part on, so the bucket's last objects never go.
    const stopped = await runExport({ ...input, shouldStop: () => parts.mock.calls.length >= 2 });
    expect(stopped).toMatchObject({ complete: false, stopped: true });
    const { sent, failed, profiles } = stopped.progress.counts;
    expect(sent).toBe(sandbox().stats.objectsProcessed);
    expect(sent).toBeLessThanOrEqual(2 * PART_OBJECTS);
    expect(profiles).toBe(PROFILES);
    expect(failed).toBe(PROFILES - sent); // never sent: tried again by the next run

    const rest = await runExport(input);
    expect(rest.complete).toBe(true);
    expect(rest.progress.counts).toMatchObject({ profiles: PROFILES, unchanged: sent, sent: PROFILES - sent });
    expect(sandbox().stats.objectsProcessed).toBe(PROFILES);
    expect(sandbox().profileList()).toHaveLength(PROFILES);
  });
});
