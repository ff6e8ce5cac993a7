// Sending early (first runs and full syncs): the largest segment's profiles that no other
// segment holds go to Braze before the snapshot is fully read. The outcome must be the one the
// bucket-by-bucket path gives: one object per profile, first value wins, counts add up.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runExport, type RunProgress } from '../../shared/engine';
import { KeyFilter } from '../../shared/engine/early-send/key-filter';
import { fnv1a32 } from '../../shared/engine/hash/key-hash';
import { services } from '../../shared/services';
import { CONTAINERS } from '../../shared/store/clients';
import { ConnectionLimitsRepo } from '../../shared/store/connection-limits';
import { locateSnapshot } from '../../shared/snapshot/locate';
import { SyncStateStore } from '../../shared/engine/state/sync-state';
import { call, useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { createConnection, createExport, engineInput, runNow, useSandbox } from '../helpers/engine';
import { exportPreview } from '../../functions/exportPreview';

useAzurite();
const sandbox = useSandbox();
// As on an instance of two cores or more, whatever this machine has: on one core, a first run at
// the test connections' budget (Braze's whole limit) reads first (the one-core case below).
beforeEach(() => {
  sandbox().reset();
  vi.spyOn(os, 'availableParallelism').mockReturnValue(2);
});
afterEach(() => vi.restoreAllMocks());

const MEMBERSHIP = '0000-0000-0000';
const alias = (i: number) => `alias:ci_customer_id:c${i}`;
const external = (i: number) => `external_id:u${i}`;
/** rows() gives odd profiles an external id and even ones an alias. */
const profile = (i: number) => sandbox().profiles.get(i % 2 ? external(i) : alias(i))?.attributes;

/** The export's checkpoints of what was sent early, in its sync state. */
async function earlyCheckpoints(exportId: string): Promise<string[]> {
  const names: string[] = [];
  for await (const b of services()
    .storage.appBlobs.getContainerClient(CONTAINERS.state)
    .listBlobsFlat({ prefix: `${exportId}/` }))
    if (b.name.includes('.early-')) names.push(b.name);
  return names;
}

describe('sending early', () => {
  it('merges profiles that other segments share, and rows that repeat a profile, exactly as the bucket path would', async () => {
    // "Small" is listed first, so its values win for the profiles both segments hold (c1..c50).
    const big = [
      rows(300).replace('c200,,p200@example.com,Name200', 'c200,,p200@example.com,'), // no first name in c200's first row…
      'c100,,p100@example.com,Dup100\nc200,,p200@example.com,Late200\n', // …but in its second; c100's second row loses
    ];
    const source = await writeCiExport(services().storage.ciBlobs, [
      { segment: 'Small', partitions: [rows(50, { name: (i) => `Small${i}` })] },
      { segment: 'Big', partitions: big },
    ]);
    const conn = await createConnection(sandbox().url);
    const exp = await createExport(conn.id, { source, segments: ['Small', 'Big'], matching: MATCHING });

    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.counts).toMatchObject({ rowsRead: 352, profiles: 300, sent: 300, unchanged: 0, rejected: 0, failed: 0 });
    expect(sandbox().profiles.size).toBe(300);
    // c200 went out while reading and again once merged with its later row: proof this path was taken.
    expect(sandbox().stats.objectsProcessed).toBe(301);
    expect(profile(7)).toMatchObject({ first_name: 'Small7', [MEMBERSHIP]: ['Big', 'Small'] });
    expect(profile(51)).toMatchObject({ first_name: 'Name51', [MEMBERSHIP]: ['Big'] });
    expect(profile(100)).toMatchObject({ first_name: 'Name100', [MEMBERSHIP]: ['Big'] });
    expect(profile(200)).toMatchObject({ first_name: 'Late200', [MEMBERSHIP]: ['Big'] });
    // The checkpoint written when reading ended is in the buckets' state now: it is gone.
    expect(await earlyCheckpoints(exp.id)).toEqual([]);

    // The run's record says when Braze first heard from it: while the snapshot was read.
    const took = (Date.parse(run.finishedAt!) - Date.parse(run.startedAt!)) / 1000;
    expect(run.timings!.firstRequestSeconds).toBeGreaterThanOrEqual(0);
    expect(run.timings!.firstRequestSeconds).toBeLessThanOrEqual(took);

    // The state records what Braze got: the same snapshot again, diffed, sends nothing.
    const again = await runNow(exp.id, { fullSync: false });
    expect(again.run.counts).toMatchObject({ profiles: 300, unchanged: 300, sent: 0 });
    expect(again.run.timings?.firstRequestSeconds ?? null).toBeNull();
  });

  it('the checkpoint of what was sent early is one blob for every bucket, removed once every bucket’s state is written', async () => {
    // What the run writes and removes, in order: "wrote 3" (a bucket's state), "removed <name>".
    const events: string[] = [];
    class Watched extends SyncStateStore {
      override async writeBucket(...args: Parameters<SyncStateStore['writeBucket']>): Promise<void> {
        await super.writeBucket(...args);
        events.push(`wrote ${args[0]}`);
      }
      override async removeEarlyCheckpoints(listed?: readonly string[]): Promise<void> {
        for (const name of listed ?? (await this.earlyCheckpointNames())) events.push(`removed ${name}`);
        await super.removeEarlyCheckpoints(listed);
      }
    }
    const app = services();
    const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(600)] }]);
    const exp = await createExport((await createConnection(sandbox().url)).id, { source, segments: ['S'], matching: MATCHING });
    const snapshot = await locateSnapshot(app.storage.ciBlobs, exp.source, exp.segments);
    const input = engineInput(exp, snapshot, sandbox().url);
    const state = new Watched(app.storage.appBlobs.getContainerClient(CONTAINERS.state), exp.id);
    const result = await runExport({ ...input, state, firstAttempt: true, bucketTargetBytes: 2048 });
    expect(result.complete).toBe(true);
    expect(result.progress.counts).toMatchObject({ profiles: 600, sent: 600 });
    expect(sandbox().stats.objectsProcessed).toBe(600); // all of them sent early
    const wrote = events.filter((e) => e.startsWith('wrote'));
    const removed = events.filter((e) => e.startsWith('removed'));
    expect(wrote.length).toBeGreaterThan(8);
    // Every bucket was in the checkpoint when reading ended: one blob, removed after the last bucket's state was written.
    expect(removed).toEqual([`removed ${exp.id}/buckets.early-0000.0.tsv`]);
    expect(events.indexOf(removed[0]!)).toBe(events.length - 1);
    expect(await earlyCheckpoints(exp.id)).toEqual([]);
  });

  it('a slow last checkpoint of what was sent early holds no bucket up: more than three are sent and written meanwhile', async () => {
    // A bucket's room comes back once its state is written; its record, after that checkpoint, may wait.
    // The checkpoint waits until a fourth bucket's state is written (or 5 s: then the buckets
    // waited for the checkpoint, and the test fails).
    const events: string[] = [];
    let fourthWritten!: () => void;
    const fourth = new Promise<void>((r) => (fourthWritten = r));
    class SlowCheckpoint extends SyncStateStore {
      override async writeEarlyCheckpoint(...args: Parameters<SyncStateStore['writeEarlyCheckpoint']>): Promise<void> {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([fourth, new Promise((r) => (timer = setTimeout(r, 5000)))]);
        clearTimeout(timer);
        await super.writeEarlyCheckpoint(...args);
        events.push('checkpoint');
      }
      override async writeBucket(...args: Parameters<SyncStateStore['writeBucket']>): Promise<void> {
        await super.writeBucket(...args);
        events.push(`wrote ${args[0]}`);
        if (events.filter((e) => e.startsWith('wrote')).length === 4) fourthWritten();
      }
    }
    const app = services();
    // c1..c300 in both segments (merged in the bucket phase), c301..c600 in Big alone (sent early).
    const source = await writeCiExport(app.storage.ciBlobs, [
      { segment: 'Small', partitions: [rows(300)] },
      { segment: 'Big', partitions: [rows(600)] },
    ]);
    const exp = await createExport((await createConnection(sandbox().url)).id, {
      source,
      segments: ['Small', 'Big'],
      matching: MATCHING,
    });
    const snapshot = await locateSnapshot(app.storage.ciBlobs, exp.source, exp.segments);
    const state = new SlowCheckpoint(app.storage.appBlobs.getContainerClient(CONTAINERS.state), exp.id);
    const result = await runExport({
      ...engineInput(exp, snapshot, sandbox().url),
      state,
      firstAttempt: true,
      bucketTargetBytes: 2048,
    });
    expect(result.complete).toBe(true);
    expect(result.progress.counts).toMatchObject({ profiles: 600, sent: 600, failed: 0 });
    expect(profile(7)).toMatchObject({ [MEMBERSHIP]: ['Big', 'Small'] });
    expect(events.filter((e) => e === 'checkpoint')).toHaveLength(1);
    expect(events.slice(0, events.indexOf('checkpoint')).filter((e) => e.startsWith('wrote')).length).toBeGreaterThan(3);
    expect(await earlyCheckpoints(exp.id)).toEqual([]);
  });

  it('on one core, only while Braze sets the pace: with a budget the core cannot keep up with, the run reads first, same outcome; the preview says what it sends', async () => {
    vi.spyOn(os, 'availableParallelism').mockReturnValue(1);
    // c2's first row has no first name, a later row has: sent early, c2 goes out twice (alone, then
    // merged); read first, once.
    const big = [rows(40).replace('c2,,p2@example.com,Name2', 'c2,,p2@example.com,'), 'c2,,p2@example.com,Late2\n'];
    const source = await writeCiExport(services().storage.ciBlobs, [{ segment: 'Big', partitions: big }]);
    // 3,000 requests per 3 s, Braze's whole limit: the core sets the pace; 1,000 (the default), or
    // a lower limit Braze reported for the workspace: Braze does.
    for (const [requestBudget, reportedLimit, objects] of [
      [3000, null, 40],
      [1000, null, 41],
      [3000, 1000, 41],
    ] as const) {
      sandbox().reset();
      const conn = await createConnection(sandbox().url, { requestBudget });
      if (reportedLimit !== null)
        await new ConnectionLimitsRepo(services().storage.table('connections')).recordObserved(conn.id, {
          limit: reportedLimit,
          remaining: null,
          resetsAt: null,
          observedAt: new Date().toISOString(),
          lastRateLimited: null,
        });
      const exp = await createExport(conn.id, { source, segments: ['Big'], matching: MATCHING });
      const preview = await call(exportPreview, { method: 'POST', path: `exports/${exp.id}/preview`, params: { id: exp.id } });
      const { run } = await runNow(exp.id);
      expect(run.counts).toMatchObject({ rowsRead: 41, profiles: 40, sent: 40, failed: 0 });
      expect(sandbox().stats.objectsProcessed, `budget ${requestBudget}, reported ${reportedLimit}`).toBe(objects);
      expect(preview.body).toMatchObject({ objects, requests: run.requests!.sent });
      expect(profile(2)).toMatchObject({ first_name: 'Late2', [MEMBERSHIP]: ['Big'] });
    }
  });

  it('other segments are read for their keys first and their rows taken in later: same merge, same row order, refused rows still reported', async () => {
    // Small comes in three partitions. c5 repeats in the second one (its first row wins); u900 has
    // no CI id, only a Braze id that Big has too; one row has no identifier at all.
    const small = [
      rows(20, { name: (i) => `Small${i}` }),
      'c5,u5,p5@example.com,Again5\n,u900,p900@example.com,SmallOnly900\n,,nobody@example.com,Nobody\n',
      rows(10, { from: 21, name: (i) => `Small${i}` }),
    ];
    const big = [rows(200), ',u900,p900@example.com,Big900\n'];
    const source = await writeCiExport(services().storage.ciBlobs, [
      { segment: 'Small', partitions: small },
      { segment: 'Big', partitions: big },
    ]);
    const conn = await createConnection(sandbox().url);
    const exp = await createExport(conn.id, { source, segments: ['Small', 'Big'], matching: MATCHING });

    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    // 33 + 201 rows; 201 profiles plus the row without identifier, which is rejected.
    expect(run.counts).toMatchObject({ rowsRead: 234, profiles: 202, sent: 201, rejected: 1, failed: 0 });
    expect(run.segments).toEqual({ Small: { rows: 33 }, Big: { rows: 201 } });
    // Each profile went out once: none of Small's was sent before its Small row was known.
    expect(sandbox().stats.objectsProcessed).toBe(201);
    expect(profile(5)).toMatchObject({ first_name: 'Small5', [MEMBERSHIP]: ['Big', 'Small'] });
    expect(profile(30)).toMatchObject({ first_name: 'Small30', [MEMBERSHIP]: ['Big', 'Small'] });
    expect(profile(31)).toMatchObject({ first_name: 'Name31', [MEMBERSHIP]: ['Big'] });
    expect(sandbox().profiles.get('external_id:u900')?.attributes).toMatchObject({
      first_name: 'SmallOnly900',
      [MEMBERSHIP]: ['Big', 'Small'],
    });
    const [container, ...name] = run.rejectedReport!.split('/');
    const report = (
      await services().storage.appBlobs.getContainerClient(container!).getBlobClient(name.join('/')).downloadToBuffer()
    ).toString();
    expect(report).toMatch(/Small,Small_2\.csv,3,,no usable identifier/);
  });

  it('a profile Braze refuses when sent early is rejected with its reason and tried again by the next run', async () => {
    const source = await writeCiExport(services().storage.ciBlobs, [
      { segment: 'Small', partitions: [rows(10)] },
      { segment: 'Big', partitions: [rows(120, { name: (i) => (i === 77 ? 'ODD' : `Name${i}`) })] },
    ]);
    const conn = await createConnection(sandbox().url);
    const exp = await createExport(conn.id, { source, segments: ['Small', 'Big'], matching: MATCHING });
    sandbox().setFaults({ objectErrorMarker: 'ODD' });
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ profiles: 120, sent: 119, rejected: 1, failed: 0 });
    const [container, ...name] = run.rejectedReport!.split('/');
    const report = (
      await services().storage.appBlobs.getContainerClient(container!).getBlobClient(name.join('/')).downloadToBuffer()
    ).toString();
    expect(report).toMatch(/c77,Braze: Invalid value/);

    sandbox().setFaults({ objectErrorMarker: undefined });
    const { run: next } = await runNow(exp.id);
    expect(next.counts).toMatchObject({ sent: 1, unchanged: 119, rejected: 0 });
    expect(profile(77)).toMatchObject({ first_name: 'ODD' });
  });

  it('a full sync after profiles left: those sent early stay, the leavers lose their membership once', async () => {
    const blobs = services().storage.ciBlobs;
    const source = await writeCiExport(blobs, [
      { segment: 'Small', partitions: [rows(10)] },
      { segment: 'Big', partitions: [rows(100)] },
    ]);
    const conn = await createConnection(sandbox().url);
    const exp = await createExport(conn.id, { source, segments: ['Small', 'Big'], matching: MATCHING });
    await runNow(exp.id);
    // c81..c100 leave; c5 leaves Small only.
    await writeCiExport(
      blobs,
      [
        { segment: 'Small', partitions: [rows(4)] },
        { segment: 'Big', partitions: [rows(80)] },
      ],
      { folder: source.folder, stamp: '2026/11/22/0615' },
    );

    const { run } = await runNow(exp.id, { fullSync: true });
    expect(run.counts).toMatchObject({ profiles: 80, sent: 80, unchanged: 0, removed: 20, failed: 0 });
    expect(profile(5)).toMatchObject({ [MEMBERSHIP]: ['Big'] });
    expect(profile(50)).toMatchObject({ [MEMBERSHIP]: ['Big'] });
    expect(profile(90)).toBeDefined();
    expect(profile(90)![MEMBERSHIP]).toBeUndefined();

    const again = await runNow(exp.id);
    expect(again.run.counts).toMatchObject({ profiles: 80, unchanged: 80, sent: 0, removed: 0 });
  });
});

describe('sending early, settled by a later attempt', () => {
  type Faults = Parameters<ReturnType<typeof sandbox>['setFaults']>[0];
  /**
   * The two attempts of a run, played here: the first sends early and its time box ends as soon as
   * reading does, so no bucket is settled in it (as a busy machine, or a kill, can make it), or
   * while it reads; the second settles every bucket from the first one's checkpoints of what was
   * sent early.
   */
  async function twoAttempts(
    /** Profiles in each partition of the one segment. */
    partitions: number[],
    name: (i: number) => string,
    faults: { first: Faults; second: Faults },
    /**
     * The first attempt's time box ends after it was asked this many times: before each chunk of the
     * segment sent early (a partition this small is one). Default: once reading ends.
     */
    firstYieldsAfter?: number,
  ) {
    const app = services();
    const starts = partitions.map((_, p) => 1 + partitions.slice(0, p).reduce((a, b) => a + b, 0));
    const csv = partitions.map((count, p) => rows(count, { from: starts[p], name }));
    const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: csv }]);
    const exp = await createExport((await createConnection(sandbox().url)).id, { source, segments: ['S'], matching: MATCHING });
    const snapshot = await locateSnapshot(app.storage.ciBlobs, exp.source, exp.segments);
    const runId = randomUUID();
    const attempt = (resumeFrom?: RunProgress) => {
      let read = false;
      let asked = 0;
      return runExport({
        ...engineInput(exp, snapshot, sandbox().url),
        runId,
        firstAttempt: !resumeFrom,
        resumeFrom,
        bucketTargetBytes: 2048, // a dozen buckets or more
        onProgress: (p) => void (read ||= p.phase !== 'reading'),
        shouldYield: () => !resumeFrom && (firstYieldsAfter === undefined ? read : ++asked > firstYieldsAfter),
      });
    };
    sandbox().setFaults(faults.first);
    const first = await attempt();
    expect(first.complete).toBe(false);
    expect(first.progress.buckets.done).toEqual([]);
    const checkpointsLeft = await earlyCheckpoints(exp.id);
    const firstStats = { ...sandbox().stats };
    sandbox().reset();
    sandbox().setFaults(faults.second);
    const second = await attempt(first.progress);
    expect(second.complete).toBe(true);
    // Settled into the buckets' state, the first attempt's checkpoints are gone.
    expect(await earlyCheckpoints(exp.id)).toEqual([]);
    return { first, second, checkpointsLeft, firstStats };
  }

  it('profiles Braze refused while they were sent early count as rejected, with its reason, not as failed', async () => {
    const poison = { badObjectMarker: 'POISON' };
    const { first, second, checkpointsLeft } = await twoAttempts([600], (i) => (i % 150 === 0 ? 'POISON' : `N${i}`), {
      first: poison,
      second: poison,
    });
    expect(first.progress.counts.profiles).toBe(0);
    expect(checkpointsLeft.length).toBeGreaterThan(0); // what the first attempt sent early, for the second to settle
    expect(second.progress.counts).toMatchObject({ profiles: 600, sent: 596, rejected: 4, failed: 0, unchanged: 0 });
    expect(second.rejectedRows.map((r) => [r.profileId, r.reason]).sort()).toEqual(
      [150, 300, 450, 600].map((i) => [`c${i}`, 'Braze refused the object (400: Invalid attributes object in request)']).sort(),
    );
    // Known from the first attempt's checkpoints: nothing is sent again (the next run tries them again).
    expect(sandbox().stats.requests).toBe(0);
  });

  it('a time box that ends while sending early: the next attempt sends the rest, and what Braze refused is not sent again', async () => {
    // Two profiles in three are refused. The first attempt's time box ends once four partitions are
    // sent early; the second attempt sends the last one's profiles through its buckets, where most
    // objects are ones Braze refused before: answered without being sent. A bucket's few objects
    // still go without waiting for the next bucket's, which waits for them.
    const odd = { objectErrorMarker: 'ODD' };
    const { second, firstStats } = await twoAttempts(
      [300, 300, 300, 300, 300],
      (i) => (i % 3 ? 'ODD' : `N${i}`),
      { first: odd, second: odd },
      4,
    );
    expect(firstStats.objectsReceived).toBe(1200);
    expect(second.progress.counts).toMatchObject({ profiles: 1500, sent: 500, rejected: 1000, failed: 0 });
    // The second attempt sent the last partition only, and Braze took the 100 of it it takes.
    expect(sandbox().stats.objectsReceived).toBe(300);
    expect(sandbox().stats.objectsProcessed).toBe(100);
  });

  it('profiles sent early that Braze did not take are sent by the next attempt', async () => {
    // Every request of the first attempt is refused as a whole: its objects are failed, not rejected.
    const { second } = await twoAttempts([300], (i) => `N${i}`, {
      first: { refuseEveryRequest: 'Bad gateway policy' },
      second: {},
    });
    expect(second.progress.counts).toMatchObject({ profiles: 300, sent: 300, rejected: 0, failed: 0 });
    expect(sandbox().profiles.size).toBe(300);
    expect(sandbox().stats.objectsProcessed).toBe(300);
  });
});

describe('key filter', () => {
  it('never forgets a key it was given, and rarely claims one it was not', () => {
    const filter = new KeyFilter(50_000);
    for (let i = 0; i < 50_000; i++) filter.add(fnv1a32(`c${i}`));
    for (let i = 0; i < 50_000; i++) expect(filter.mightHave(fnv1a32(`c${i}`))).toBe(true);
    let falseMaybes = 0;
    for (let i = 50_000; i < 150_000; i++) if (filter.mightHave(fnv1a32(`c${i}`))) falseMaybes++;
    expect(falseMaybes / 100_000).toBeLessThan(0.03);
  });

  it('stays that good for the keys of one sync-state bucket (hashes that share their low bits)', () => {
    // Every key of a bucket has the same fnv1a32 modulo the bucket count: the filter must not rely on those bits.
    const keys = Array.from({ length: 400_000 }, (_, i) => `c${i}`).filter((k) => fnv1a32(k) % 64 === 5);
    const [given, others] = [keys.slice(0, keys.length / 2), keys.slice(keys.length / 2)];
    const filter = new KeyFilter(given.length);
    for (const k of given) filter.add(fnv1a32(k));
    for (const k of given) expect(filter.mightHave(fnv1a32(k))).toBe(true);
    const falseMaybes = others.filter((k) => filter.mightHave(fnv1a32(k))).length;
    expect(falseMaybes / others.length).toBeLessThan(0.03);
  });
});
