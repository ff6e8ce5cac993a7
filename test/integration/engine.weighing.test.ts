// A run weighed as it goes (the guard on a change run): every bucket is prepared and set aside
// before anything reaches Braze; the guard's decision then sends exactly what was weighed, or
// nothing at all, and a run being weighed records no progress.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runExport, type EngineInput, type RunProgress, type WeighedRun } from '../../shared/engine';
import { services } from '../../shared/services';
import { locateSnapshot } from '../../shared/snapshot/locate';
import { useAzurite } from '../helpers/app';
import { rows } from '../helpers/ci-export';
import { engineInput, mutableExport, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();

/** Small buckets, so that a weighed run sets several aside. */
const BUCKET_BYTES = 512;

/** An export of 100 profiles, exported once; then 10 of them renamed and 5 gone from the snapshot. */
async function changedExport() {
  const { exp, rewrite } = await mutableExport(sandbox().url, [{ segment: 'S', partitions: [rows(100)] }]);
  const input = async (): Promise<EngineInput> => ({
    ...engineInput(exp, await locateSnapshot(services().storage.ciBlobs, exp.source, exp.segments), sandbox().url),
    bucketTargetBytes: BUCKET_BYTES,
  });
  expect((await runExport(await input())).progress.counts.sent).toBe(100);
  await rewrite([{ segment: 'S', partitions: [rows(95, { name: (i) => (i <= 10 ? `Renamed${i}` : `Name${i}`) })] }]);
  return { input };
}

/** A weighing that records what it was shown, and what Braze and the run's progress had seen by then. */
function weighing(go: boolean, deadline = Date.now() + 60_000) {
  const seen = { objects: [] as string[], weighed: null as WeighedRun | null, brazeObjects: -1, reports: -1 };
  const reports: RunProgress[] = [];
  return {
    seen,
    reports,
    onProgress: (p: RunProgress) => void reports.push(structuredClone(p)),
    weigh: {
      deadline,
      object: (bytes: Uint8Array) => seen.objects.push(Buffer.from(bytes).toString('utf8')),
      decide: async (weighed: WeighedRun) => {
        seen.weighed = weighed;
        seen.brazeObjects = sandbox().stats.objectsProcessed;
        seen.reports = reports.length;
        return go;
      },
    },
  };
}

/** Nothing reached Braze and nothing was recorded: the next run sends the same changes. */
async function expectLeftAsItWas(w: ReturnType<typeof weighing>, brazeObjectsBefore: number, input: () => Promise<EngineInput>) {
  expect(w.reports).toHaveLength(0);
  expect(sandbox().stats.objectsProcessed).toBe(brazeObjectsBefore);
  const next = await runExport(await input());
  expect(next.progress.counts).toMatchObject({ sent: 10, removed: 5, unchanged: 85 });
}

describe('a run weighed as it goes', () => {
  it('is weighed whole before anything is sent, then sends exactly what it weighed; the next run is unchanged', async () => {
    const { input } = await changedExport();
    const before = sandbox().stats.objectsProcessed;
    const w = weighing(true);
    const result = await runExport({ ...(await input()), onProgress: w.onProgress, weigh: w.weigh });

    expect(w.seen.weighed).toMatchObject({
      unweighed: null,
      counts: { profiles: 95, sent: 10, removed: 5, unchanged: 85, newProfiles: 0 },
      objects: 15,
    });
    expect(w.seen.objects).toHaveLength(15);
    expect(w.seen.objects.filter((o) => o.includes('Renamed'))).toHaveLength(10);
    // Nothing reached Braze, and no progress was reported, before the guard decided.
    expect(w.seen.brazeObjects).toBe(before);
    expect(w.seen.reports).toBe(0);

    expect(result).toMatchObject({ complete: true, held: false });
    expect(result.progress.counts).toMatchObject({ profiles: 95, sent: 10, removed: 5, unchanged: 85 });
    // The requests weighed are those sent (a small bucket after others sends what they left in a batch of its own).
    expect(w.seen.weighed!.requests).toBe(result.progress.requests.sent);
    expect(result.progress.requests.sent).toBeGreaterThan(1);
    expect(sandbox().stats.objectsProcessed - before).toBe(15);
    expect(sandbox().profiles.get('external_id:u3')!.attributes.first_name).toBe('Renamed3');
    expect(w.reports.at(-1)!.buckets.done.length).toBe(w.reports.at(-1)!.buckets.total);
    expect(w.reports.at(-1)!.buckets.total).toBeGreaterThan(1);

    // What was set aside became the sync state: the same snapshot again sends nothing.
    const again = await runExport(await input());
    expect(again.progress.counts).toMatchObject({ profiles: 95, sent: 0, removed: 0, unchanged: 95 });
    expect(sandbox().stats.objectsProcessed - before).toBe(15);
  });

  it("holds each bucket's spilled rows on the temp disk only until the bucket is set aside", async () => {
    const { input } = await changedExport();
    const tempRoot = mkdtempSync(path.join(os.tmpdir(), 'weighed-'));
    const files = () => readdirSync(tempRoot, { recursive: true, encoding: 'utf8' }).map((f) => path.basename(f));
    const spilled = (names: string[]) => names.filter((f) => /^bucket-\d+\.rows/.test(f));
    let atDecision: string[] = [];
    const w = weighing(true);
    const result = await runExport({
      ...(await input()),
      tempRoot,
      weigh: {
        ...w.weigh,
        decide: async (weighed) => {
          atDecision = files();
          return w.weigh.decide(weighed);
        },
      },
    });

    rmSync(tempRoot, { recursive: true, force: true });
    expect(result.complete).toBe(true);
    // Every bucket set aside, its rows are gone; what it sends and keeps is there instead.
    expect(spilled(atDecision)).toEqual([]);
    expect(atDecision.filter((f) => f.startsWith('staged-')).length).toBeGreaterThan(1);
  });

  it('held: nothing is sent or recorded, and the next run sends the same changes', async () => {
    const { input } = await changedExport();
    const before = sandbox().stats.objectsProcessed;
    const w = weighing(false);
    const result = await runExport({ ...(await input()), onProgress: w.onProgress, weigh: w.weigh });

    expect(result).toMatchObject({ complete: false, stopped: false, held: true });
    expect(w.seen.weighed).toMatchObject({ unweighed: null, objects: 15 });
    await expectLeftAsItWas(w, before, input);
  });

  it('cancelled while weighed: it stops before its next bucket, nothing sent, nothing recorded, nothing decided', async () => {
    const { input } = await changedExport();
    const before = sandbox().stats.objectsProcessed;
    const w = weighing(true);
    let asked = 0;
    const result = await runExport({
      ...(await input()),
      onProgress: w.onProgress,
      weigh: w.weigh,
      shouldStop: () => ++asked > 3,
    });

    expect(result).toMatchObject({ complete: false, stopped: true, held: false });
    expect(w.seen.weighed).toBeNull();
    await expectLeftAsItWas(w, before, input);
  });

  it('past its deadline: held unweighed, whatever the decision, and nothing is sent', async () => {
    const { input } = await changedExport();
    const before = sandbox().stats.objectsProcessed;
    const w = weighing(true, 0);
    const result = await runExport({ ...(await input()), onProgress: w.onProgress, weigh: w.weigh });

    expect(result.held).toBe(true);
    expect(w.seen.weighed).toMatchObject({ unweighed: 'time', objects: 0 });
    expect(w.reports).toHaveLength(0);
    expect(sandbox().stats.objectsProcessed).toBe(before);
  });
});
