// Guard rails (issue 30): a run that would change too much is held with its figures, sends
// nothing, and waits for a person; approve sends exactly what it held, dismiss leaves everything as
// it was; the timer does not queue the export again until CI writes a newer snapshot.
import { describe, expect, it } from 'vitest';
import { SyncStateStore } from '../../shared/engine';
import { services } from '../../shared/services';
import { CONTAINERS } from '../../shared/store/clients';
import { ADMIN, createConnection, mutableExport, runNow, sampleExportBody, useSandbox } from '../helpers/engine';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';

useAzurite();
const sandbox = useSandbox();

const CONTRIBUTOR = { role: 'Contributor' as const, name: 'a contributor' };
const noLog = () => undefined;

/** An export with the default guard, first run done: 100 profiles in segment S. */
async function exported(guard: Record<string, unknown> = {}) {
  const e = await mutableExport(sandbox().url, [{ segment: 'S', partitions: [rows(100)] }], { guard });
  const first = await runNow(e.exp.id);
  expect(first.run.status).toBe('succeeded');
  return e;
}

const brazeNow = () => ({ objects: sandbox().stats.objectsProcessed, requests: sandbox().stats.requests });

/** Runs the worker on a run until it is neither queued nor running. */
async function work(runId: string) {
  const app = services();
  for (let i = 0; i < 20; i++) {
    await app.worker.execute(runId, noLog);
    const run = await app.runs.get(runId);
    if (run.status !== 'queued' && run.status !== 'running') return run;
  }
  throw new Error('run did not end');
}

describe('a run that would change too much is held', () => {
  it('30 % leavers: held with its figures, nothing sent; approve sends exactly the withdrawals; the next run is unchanged', async () => {
    const { exp, rewrite } = await exported();
    await rewrite([{ segment: 'S', partitions: [rows(70)] }]);
    const before = brazeNow();
    const { run, logs } = await runNow(exp.id);
    expect(run.status).toBe('held');
    expect(run.held!.reasons.join('\n')).toMatch(/30 of the 100 members \(30\.0 %\) would lose their membership \(limit 20 %\)/);
    expect(run.held!.profiles).toMatchObject({ members: 100, leaving: 30, unchanged: 70, new: 0 });
    expect(brazeNow()).toEqual(before);
    // Weighed as it went: the run it was weighed in recorded no progress (nothing counts as sent or done).
    expect(run.counts).toBeUndefined();
    expect(run.buckets).toBeUndefined();
    // Logged in the shape the deployment's alert matches, with the reason.
    expect(logs.join('\n')).toMatch(/^run \S+ export \S+: held source=worker error=30 of the 100 members/m);

    const app = services();
    await expect(app.runs.approve(CONTRIBUTOR, run.id)).rejects.toMatchObject({ status: 403 });
    expect((await app.runs.approve(ADMIN, run.id)).status).toBe('queued');
    const approved = await work(run.id);
    expect(approved.status).toBe('succeeded');
    expect(approved.counts).toMatchObject({ removed: 30, sent: 0, unchanged: 70 });
    expect(brazeNow().objects - before.objects).toBe(30);
    expect(sandbox().profiles.get('external_id:u81')!.attributes['0000-0000-0000']).toBeUndefined();
    const next = await runNow(exp.id);
    expect(next.run.counts).toMatchObject({ sent: 0, removed: 0, unchanged: 70 });
  });

  it('an emptied segment: held; dismiss ends it cancelled and leaves Braze and the sync state as they were', async () => {
    const e = await mutableExport(
      sandbox().url,
      [
        { segment: 'S', partitions: [rows(100)] },
        { segment: 'T', partitions: [rows(5, { from: 1 })] },
      ],
      { guard: { maxLeavingPercent: null } },
    );
    expect((await runNow(e.exp.id)).run.status).toBe('succeeded');
    await e.rewrite([
      { segment: 'S', partitions: [rows(100)] },
      { segment: 'T', partitions: [''] },
    ]);
    const before = brazeNow();
    const { run } = await runNow(e.exp.id);
    expect(run.status).toBe('held');
    expect(run.held!.reasons).toEqual(['segment T has no rows in this snapshot, though it had some in the last export']);
    const dismissed = await services().runs.dismiss(ADMIN, run.id);
    expect(dismissed.status).toBe('cancelled');
    expect(dismissed.errors.at(-1)).toMatch(/Dismissed by test-admin: nothing was sent/);
    expect(brazeNow()).toEqual(before);
    // The sync state is untouched: the same snapshot is held again for the same reason.
    const again = await runNow(e.exp.id);
    expect(again.run.status).toBe('held');
    expect(again.run.held!.profiles).toEqual(run.held!.profiles);
    await expect(services().runs.approve(ADMIN, dismissed.id)).rejects.toMatchObject({ status: 409 });
  });

  it('a mapping change that resends most profiles: held, unless the run is approved up front', async () => {
    const { exp, patch } = await exported();
    const manifest = () =>
      new SyncStateStore(services().storage.appBlobs.getContainerClient(CONTAINERS.state), exp.id).readManifest();
    const exportedUnder = await manifest();
    await patch({
      matching: {
        profileId: 'CustomerId',
        email: 'PrimaryEmail',
        brazeCustomerId: 'BrazeUserId',
        attributes: { nickname: 'FirstName' },
      },
    });
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('held');
    expect(run.held!.settingsChanged).toBe(true);
    expect(run.held!.reasons.join('\n')).toMatch(
      /changed settings would send 100 of the 100 members again \(100\.0 %, limit 50 %\)/,
    );
    // Held, it wrote nothing: the sync state still says which settings Braze's profiles were sent under.
    expect(await manifest()).toEqual(exportedUnder);
    await services().runs.dismiss(ADMIN, run.id);
    const app = services();
    const outcome = await app.runs.runNow(ADMIN, exp.id, false, true);
    if (!('queued' in outcome)) throw new Error('expected a queued run');
    const approvedUpFront = await work(outcome.queued.id);
    expect(approvedUpFront.status).toBe('succeeded');
    expect(approvedUpFront.counts!.sent).toBe(100);
  });

  it("a big newcomer snapshot: held past the export's limit of new profiles", async () => {
    const { exp, rewrite } = await exported({ maxNewProfiles: 50 });
    await rewrite([{ segment: 'S', partitions: [rows(100), rows(60, { from: 101 })] }]);
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('held');
    expect(run.held!.reasons).toEqual(['60 profiles would be new to Braze from this export (limit 50)']);
    expect(run.held!.profiles).toMatchObject({ new: 60, members: 100 });
  });

  it('a first run goes unless the export caps it', async () => {
    const capped = await mutableExport(sandbox().url, [{ segment: 'S', partitions: [rows(30)] }], {
      guard: { firstRunMaxProfiles: 10 },
    });
    const { run } = await runNow(capped.exp.id);
    expect(run.status).toBe('held');
    expect(run.held!.reasons).toEqual(['a first run would create 30 profiles in Braze (limit 10)']);
  });
});

describe('the timer and a held run', () => {
  it('does not queue the export again while it is held; a newer snapshot replaces it with a new evaluation', async () => {
    const { exp, rewrite } = await exported();
    await rewrite([{ segment: 'S', partitions: [rows(50)] }]);
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('held');
    const app = services();
    const later = new Date(Date.now() + 60 * 60_000);
    const tick = await app.scheduler.tick(later, noLog);
    expect(tick.queued).not.toContain(exp.id);
    expect(tick.skipped).toContainEqual({ exportId: exp.id, reason: expect.stringMatching(/is held/) });
    expect((await app.runs.get(run.id)).status).toBe('held');

    // CI writes a newer snapshot: the held run is replaced, and the new one is evaluated afresh.
    await rewrite([{ segment: 'S', partitions: [rows(95)] }]);
    const next = await app.scheduler.tick(new Date(later.getTime() + 60 * 60_000), noLog);
    expect(next.queued).toContain(exp.id);
    const replaced = await app.runs.get(run.id);
    expect(replaced.status).toBe('cancelled');
    expect(replaced.errors.at(-1)).toMatch(/newer snapshot/);
    const newRunId = (await app.runs.listForExport(exp.id)).find((r) => r.status === 'queued')!.id;
    await app.storage.runQueue.clearMessages();
    const fresh = await work(newRunId);
    // 5 leavers of 100: under the limit, so it goes.
    expect(fresh.status).toBe('succeeded');
    expect(fresh.counts).toMatchObject({ removed: 5 });
  });
});

describe('who decides, and what an approval covers', () => {
  it('a Contributor can neither set the guard nor dismiss a held run through cancel, unless the export lets Contributors decide', async () => {
    const app = services();
    const conn = await createConnection(sandbox().url, { allowContributors: true });
    const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(100)] }]);
    const body = { ...sampleExportBody(conn.id), source, segments: ['S'], matching: MATCHING };
    await expect(app.exports.create(CONTRIBUTOR, { ...body, guard: { maxLeavingPercent: null } })).rejects.toMatchObject({
      status: 403,
    });
    const exp = (await app.exports.create(CONTRIBUTOR, body)).value;
    await expect(
      app.exports.update(CONTRIBUTOR, exp.id, { guard: { contributorsMayApprove: true } }, null),
    ).rejects.toMatchObject({
      status: 403,
    });
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(60)] }], {
      folder: source.folder,
      stamp: '2026/11/22/0615',
    });
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('held');
    await expect(app.runs.cancel(CONTRIBUTOR, run.id)).rejects.toMatchObject({ status: 403 });
    await app.exports.update(ADMIN, exp.id, { guard: { contributorsMayApprove: true } }, null);
    expect((await app.runs.cancel(CONTRIBUTOR, run.id)).status).toBe('cancelled');
  });

  it('a dismissed snapshot is not weighed again by the timer; a newer one is', async () => {
    const { exp, rewrite } = await exported();
    await rewrite([{ segment: 'S', partitions: [rows(50)] }]);
    const { run } = await runNow(exp.id);
    await services().runs.dismiss(ADMIN, run.id);
    const app = services();
    const tick = await app.scheduler.tick(new Date(Date.now() + 60 * 60_000), noLog);
    expect(tick.queued).not.toContain(exp.id);
    expect(tick.skipped).toContainEqual({ exportId: exp.id, reason: expect.stringMatching(/dismissed/) });
    await rewrite([{ segment: 'S', partitions: [rows(98)] }]);
    const next = await app.scheduler.tick(new Date(Date.now() + 2 * 60 * 60_000), noLog);
    expect(next.queued).toContain(exp.id);
    await app.storage.runQueue.clearMessages();
  });

  it('an approval covers what was held: settings changed or a newer snapshot since, the run is weighed again and sends nothing', async () => {
    const { exp, rewrite, patch } = await exported();
    await rewrite([{ segment: 'S', partitions: [rows(50)] }]);
    const first = (await runNow(exp.id)).run;
    expect(first.status).toBe('held');
    const before = brazeNow();
    // Settings changed after it was held: approving does not send under the new ones unweighed.
    await patch({ matching: { ...MATCHING, attributes: { nickname: 'FirstName' } } });
    await services().runs.approve(ADMIN, first.id);
    const reweighed = await work(first.id);
    expect(reweighed.status).toBe('held');
    expect(reweighed.approved).toBeNull();
    expect(reweighed.held!.settingsChanged).toBe(true);
    expect(brazeNow()).toEqual(before);
    // A newer snapshot since: the approval is weighed on it (5 of 100 leave: under the limit, so it goes).
    await patch({ matching: MATCHING });
    await rewrite([{ segment: 'S', partitions: [rows(95)] }]);
    await services().runs.approve(ADMIN, first.id);
    const sent = await work(first.id);
    expect(sent.status).toBe('succeeded');
    expect(sent.counts).toMatchObject({ removed: 5 });
    expect(sent.snapshot!.id).not.toBe(first.held!.snapshotId);
  });
});
