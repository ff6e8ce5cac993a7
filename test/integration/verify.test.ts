// Braze proof: a verification run reads the export's members back from Braze (/users/export/segment
// on the proof segment, from the URL or from the connection's Blob container), compares them with
// the sync state, and reports drift by kind; a repair re-sends exactly the drift. On Azurite and the
// Braze sandbox, whose users are changed behind the app's back as a person or another tool would.
import { describe, expect, it } from 'vitest';
import { exportVerify } from '../../functions/exportVerify';
import { exportRun } from '../../functions/exportRun';
import { runDriftReport } from '../../functions/runDriftReport';
import { runRepair } from '../../functions/runRepair';
import { SANDBOX_KEY_WITHOUT_EXPORT } from '../../scripts/braze-sandbox';
import { services } from '../../shared/services';
import { runFolder } from '../../shared/runs/pinned-snapshot';
import { CONTAINERS } from '../../shared/store/clients';
import { downloadFromContainer } from '../../shared/verify/export-files';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { call } from '../helpers/app';
import { defineProofSegment, edit, PROOF, SEG, useVerifyWorld, verify, work } from '../helpers/verify';
import { rows } from '../helpers/ci-export';
import { ADMIN, mutableExport, runNow } from '../helpers/engine';

const { azurite, sandbox } = useVerifyWorld({}, { stableListingMs: 150 });

/** c1..c6 in A, c5..c8 in B (odd: external ids u1, u3…; even: aliases c2, c4…). */
async function exportedAndSent(over: Record<string, unknown> = {}) {
  defineProofSegment(sandbox());
  const { exp } = await mutableExport(
    sandbox().url,
    [
      { segment: 'A', partitions: [rows(6)] },
      { segment: 'B', partitions: [rows(4, { from: 5 })] },
    ],
    { proofSegmentId: PROOF, ...over },
  );
  const { run } = await runNow(exp.id);
  expect(run.status).toBe('succeeded');
  return exp;
}

/** The drift CSV as GET /api/runs/{id}/drift serves it (its bytes read where the route reads them). */
async function driftCsv(runId: string): Promise<string[]> {
  const res = await call(runDriftReport, { method: 'GET', path: `runs/${runId}/drift`, params: { runId } });
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
  const [container, ...name] = (await services().runs.get(runId)).verify!.driftReport!.split('/');
  const bytes = await services().storage.appBlobs.getContainerClient(container!).getBlobClient(name.join('/')).downloadToBuffer();
  return bytes.toString('utf8').trim().split('\n');
}

describe('verification of an export against what Braze holds', () => {
  it('after a normal run, finds no drift, and says so', async () => {
    const exp = await exportedAndSent();
    const tracked = sandbox().stats.requests;
    const run = await verify(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.verify!.counts).toEqual({ inState: 8, inBraze: 8, matched: 8, missing: 0, extra: 0, stale: 0, unknown: 0 });
    expect(run.verify!.summary).toMatch(/^No drift/);
    expect(run.verify!.driftReport).toBeNull();
    expect(run.verify!.delivery).toBe('url');
    // Braze's signed download URL is not kept once the run has ended.
    const saved = services()
      .storage.appBlobs.getContainerClient(CONTAINERS.reports)
      .getBlobClient(`${runFolder(run.id)}/braze-export.json`);
    expect(await saved.exists()).toBe(false);
    expect(sandbox().stats.requests).toBe(tracked); // nothing written to Braze
    expect(sandbox().exports.exportsRequested).toBe(1);
    // The export's last run stays the export run (the timer's "already exported" check reads it); the verification is beside it.
    const view = (await services().exports.view((await services().exports.get(exp.id)).value)) as any;
    expect(view.lastRun.id).not.toBe(run.id);
    expect(view.lastVerify).toMatchObject({ id: run.id, status: 'succeeded', drift: { matched: 8 } });
  });

  it('finds exactly the users changed behind its back, by kind; repair and the next run leave no drift', async () => {
    const exp = await exportedAndSent();
    edit(sandbox(), 'external_id:u5', { [SEG]: ['A'] }); // in A and B: B removed in the dashboard
    edit(sandbox(), 'external_id:u3', { first_name: 'Edited' }); // another tool wrote the attribute
    expect(sandbox().deleteUser('alias:ci_customer_id:c2')).toBe(true); // deleted in Braze
    edit(sandbox(), 'external_id:stranger-1', { [SEG]: ['A'] }, [], true); // a user CI never had, given the membership
    edit(sandbox(), 'alias:ci_customer_id:c4', { [SEG]: ['A', 'B'] }); // in A only: B added

    const run = await verify(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.verify!.counts).toEqual({ inState: 8, inBraze: 8, matched: 4, missing: 2, extra: 1, stale: 1, unknown: 1 });
    // c2, deleted in Braze, counts where the snapshot the state was built from put it: in A.
    expect(run.verify!.bySegment).toEqual({
      A: { missing: 1, extra: 0, stale: 1, unknown: 1 },
      B: { missing: 1, extra: 1, stale: 0, unknown: 0 },
    });
    expect(run.verify!.sentValues).toMatchObject({ looked: 2, untold: 0 });
    const lines = await driftCsv(run.id);
    expect(lines[0]).toBe('kind,identifierType,identifier,profileId,segments,fields');
    expect(lines.slice(1).sort()).toEqual(
      [
        'extra,user_alias,c4,c4,B,',
        'missing,external_id,u5,c5,B,',
        'missing,user_alias,c2,c2,A,',
        'stale,external_id,u3,c3,A,first_name',
        'unknown,external_id,stranger-1,,A,',
      ].sort(),
    );
    expect(lines.join('\n')).not.toMatch(/Edited|example\.com/); // ids only, never values

    // What it costs first, then the repair: one export run re-sends exactly the drift.
    const cost = await call(runRepair, {
      method: 'POST',
      path: `runs/${run.id}/repair`,
      params: { runId: run.id },
      body: { dryRun: true },
    });
    expect(cost.body).toEqual({ profiles: 4, withdrawals: 1, unaddressable: 0, requests: 1 });
    const before = sandbox().stats.objectsProcessed;
    const repair = await call(runRepair, { method: 'POST', path: `runs/${run.id}/repair`, params: { runId: run.id } });
    expect(repair.status).toBe(202);
    const next = await work(repair.body.runId);
    expect(next.status).toBe('succeeded');
    expect(next.counts).toMatchObject({ sent: 4, removed: 1, failed: 0 });
    expect(sandbox().stats.objectsProcessed - before).toBe(5); // 4 re-sent + 1 withdrawal = the drift, in 1 request
    expect(sandbox().profiles.get('external_id:stranger-1')!.attributes[SEG]).toBeUndefined();
    expect(sandbox().profiles.get('external_id:u3')!.attributes.first_name).toBe('Name3');

    const again = await verify(exp.id);
    expect(again.verify!.counts).toMatchObject({ missing: 0, extra: 0, stale: 0, unknown: 0, matched: 8 });
    // A repaired verification is not repaired twice.
    const twice = await call(runRepair, { method: 'POST', path: `runs/${run.id}/repair`, params: { runId: run.id } });
    expect(twice.status).toBe(409);
  });

  it('a sample read through /users/export/ids finds the drift among the profiles it reads, with how far that holds', async () => {
    const exp = await exportedAndSent({ proofSegmentId: undefined }); // a sample needs no proof segment
    const sample = async () => {
      const res = await call(exportVerify, {
        method: 'POST',
        path: `exports/${exp.id}/verify`,
        params: { id: exp.id },
        body: { sample: 100 },
      });
      expect(res.status).toBe(202);
      return work(res.body.runId);
    };
    const clean = await sample();
    expect(clean.verify!.counts).toMatchObject({ inState: 8, inBraze: 8, matched: 8 });
    expect(clean.verify!.confidence).toBe('0 drift in 8 sampled profiles: drift below 31.23 % at 95 %');
    edit(sandbox(), 'external_id:u5', { [SEG]: ['A'] });
    edit(sandbox(), 'external_id:u3', { first_name: 'Edited' });
    expect(sandbox().deleteUser('alias:ci_customer_id:c2')).toBe(true);
    edit(sandbox(), 'alias:ci_customer_id:c4', { [SEG]: ['A', 'B'] });
    edit(sandbox(), 'external_id:stranger-1', { [SEG]: ['A'] }, [], true); // not ours: a sample never reads it
    const run = await sample();
    expect(run.verify!.counts).toEqual({ inState: 8, inBraze: 7, matched: 4, missing: 2, extra: 1, stale: 1, unknown: 0 });
    expect(run.verify!.bySegment).toEqual({
      A: { missing: 1, extra: 0, stale: 1, unknown: 0 },
      B: { missing: 1, extra: 1, stale: 0, unknown: 0 },
    });
    expect(run.verify!.confidence).toMatch(
      /^4 drifted in 8 sampled profiles: drift between \d+(\.\d+)? % and \d+(\.\d+)? % at 95 %$/,
    );
    expect(sandbox().exports.exportsRequested).toBe(0); // no segment export
    // Repair works from a sample's drift as from a whole verification's.
    const repair = await call(runRepair, { method: 'POST', path: `runs/${run.id}/repair`, params: { runId: run.id } });
    expect((await work(repair.body.runId)).counts).toMatchObject({ sent: 4, removed: 0 });
    expect((await sample()).verify!.counts).toMatchObject({ matched: 8, missing: 0, extra: 0, stale: 0 });
  });

  it('verifyAfterRun: an export run that delivered is followed by a verification', async () => {
    await expect(exportedAndSent({ proofSegmentId: undefined, verifyAfterRun: true })).rejects.toMatchObject({ status: 400 });
    const exp = await exportedAndSent({ verifyAfterRun: true });
    const runs = await services().runs.listForExport(exp.id);
    const queued = runs.find((r) => r.kind === 'verify');
    expect(queued).toMatchObject({ status: 'queued', trigger: 'schedule', queuedBy: 'after its run' });
    expect((await work(queued!.id)).verify!.counts).toMatchObject({ matched: 8, missing: 0, stale: 0 });
  });

  it('boolean membership: the segment filters "is true"; a segment switched off in Braze is missing', async () => {
    sandbox().exports.define({
      id: 'proof-boolean',
      filters: [
        { attribute: 'ci_segment_A', isTrue: true },
        { attribute: 'ci_segment_B', isTrue: true },
      ],
    });
    const exp = await exportedAndSent({ proofSegmentId: 'proof-boolean', membership: { format: 'boolean' } });
    expect((await verify(exp.id)).verify!.counts).toMatchObject({ inBraze: 8, matched: 8 });
    edit(sandbox(), 'external_id:u5', { ci_segment_B: false });
    edit(sandbox(), 'alias:ci_customer_id:c6', { ci_segment_A: false, ci_segment_B: false }); // out of the Braze segment
    const run = await verify(exp.id);
    expect(run.verify!.counts).toMatchObject({ inBraze: 7, matched: 6, missing: 2, extra: 0, stale: 0, unknown: 0 });
    // c6, out of the Braze segment altogether, counts in both of its segments.
    expect(run.verify!.bySegment).toEqual({
      A: { missing: 1, extra: 0, stale: 0, unknown: 0 },
      B: { missing: 2, extra: 0, stale: 0, unknown: 0 },
    });
  });

  it('reads the files Braze writes into the connection’s Blob container (no URL)', async () => {
    sandbox().exports.settings.blob = { connectionString: azurite().connectionString, container: 'braze-exports' };
    sandbox().exports.settings.usersPerFile = 3; // several files, as Braze writes 5,000 users a file
    const exp = await exportedAndSent();
    await services().connections.update(ADMIN, exp.connectionId!, { exportContainer: { container: 'braze-exports' } }, null);
    // Another account is reached with the app's identity: only at Azure Storage's own domains.
    await expect(
      services().connections.update(
        ADMIN,
        exp.connectionId!,
        { exportContainer: { container: 'braze-exports', accountUrl: 'https://evil.blob.attacker.example' } },
        null,
      ),
    ).rejects.toMatchObject({ status: 400 });
    edit(sandbox(), 'external_id:u1', { first_name: 'Edited' });
    const run = await verify(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.verify!.delivery).toBe('container');
    expect(run.verify!.counts).toMatchObject({ inBraze: 8, matched: 7, stale: 1 });
    const names: string[] = [];
    const container = services().storage.ciBlobs.getContainerClient('braze-exports');
    for await (const b of container.listBlobsFlat({ prefix: `segment-export/${PROOF}/` })) names.push(b.name);
    expect(names).toHaveLength(3);
    expect(names.every((n) => n.includes(`/${run.verify!.objectPrefix}/`) && n.endsWith('.gz'))).toBe(true);
    // Braze's export of the segment is done: the next verification may ask for another.
    expect((await verify(exp.id)).verify!.counts).toMatchObject({ inBraze: 8, stale: 1 });
  });

  it('a second verification, or a run, while one is going gets 409 with the active run', async () => {
    const exp = await exportedAndSent();
    const viewer = await call(exportVerify, {
      method: 'POST',
      path: `exports/${exp.id}/verify`,
      params: { id: exp.id },
      as: 'Viewer',
    });
    expect(viewer.status).toBe(403);
    const first = await call(exportVerify, { method: 'POST', path: `exports/${exp.id}/verify`, params: { id: exp.id } });
    expect(first.status).toBe(202);
    const second = await call(exportVerify, { method: 'POST', path: `exports/${exp.id}/verify`, params: { id: exp.id } });
    expect(second.status).toBe(409);
    expect(second.body.error.activeRun.id).toBe(first.body.runId);
    const run = await call(exportRun, { method: 'POST', path: `exports/${exp.id}/run`, params: { id: exp.id } });
    expect(run.status).toBe(409);
    expect((await work(first.body.runId)).status).toBe('succeeded');
  });

  it('a Braze export that never becomes ready ends the run failed, with the reason', async () => {
    const exp = await exportedAndSent();
    sandbox().exports.settings.neverReady = true;
    const run = await verify(exp.id);
    expect(run.status).toBe('failed');
    expect(run.errors.at(-1)).toMatch(/export of segment proof-segment-1 .* was not ready after .* minutes.*Verify again later/);
  });

  it('a key without users.export.segment ends the run failed, naming the permission', async () => {
    const exp = await exportedAndSent();
    const app = services();
    await app.connections.update(ADMIN, exp.connectionId!, { apiKey: SANDBOX_KEY_WITHOUT_EXPORT }, null);
    const run = await verify(exp.id);
    expect(run.status).toBe('failed');
    expect(run.errors.at(-1)).toMatch(/lacks the users\.export\.segment permission/);
  });

  it('a sample with a key without users.export.ids ends the run failed at once, naming the permission', async () => {
    const exp = await exportedAndSent();
    await services().connections.update(ADMIN, exp.connectionId!, { apiKey: SANDBOX_KEY_WITHOUT_EXPORT }, null);
    const res = await call(exportVerify, {
      method: 'POST',
      path: `exports/${exp.id}/verify`,
      params: { id: exp.id },
      body: { sample: 5 },
    });
    expect(res.status).toBe(202);
    await services().storage.runQueue.clearMessages();
    await services().worker.execute(res.body.runId, () => undefined);
    const run = await services().runs.get(res.body.runId);
    expect(run.status).toBe('failed');
    expect(run.errors.at(-1)).toMatch(/lacks the users\.export\.ids permission/);
  });

  it('an export without a proof segment cannot be verified (409), nor one that never sent (failed)', async () => {
    const exp = await exportedAndSent({ proofSegmentId: undefined });
    const res = await call(exportVerify, { method: 'POST', path: `exports/${exp.id}/verify`, params: { id: exp.id } });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/proofSegmentId/);
    const { exp: fresh } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(2)] }], {
      proofSegmentId: PROOF,
    });
    const never = await verify(fresh.id);
    expect(never.status).toBe('failed');
    expect(never.errors.at(-1)).toMatch(/has not sent anything/);
  });

  it('container delivery: a listing still growing is not taken for the export; it must stay unchanged for the window', async () => {
    const container = services().storage.ciBlobs.getContainerClient('braze-exports-growing');
    await container.createIfNotExists();
    const name = (i: number) => `segment-export/${PROOF}/2026-01-01/prefix-1/part-${i}.json.gz`;
    await container.getBlockBlobClient(name(0)).upload('a', 1);
    // Braze writes the second file 100 ms later: two polls 50 ms apart see the same single file. The
    // window (2 s) leaves a busy machine time to finish that upload before the listing counts as stable.
    setTimeout(() => void container.getBlockBlobClient(name(1)).upload('b', 1), 100);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'verify-growing-'));
    try {
      const w = { pollMs: 50, until: Date.now() + 10_000, shouldStop: () => false, stableMs: 2000 };
      const got = await downloadFromContainer(container, PROOF, 'prefix-1', dir, w);
      expect(got!.files).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a Braze export far smaller than what the state says was sent is not reported: the run fails, saying it looks incomplete', async () => {
    defineProofSegment(sandbox());
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(12)] }], { proofSegmentId: PROOF });
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    for (let i = 1; i <= 7; i++) sandbox().deleteUser(i % 2 ? `external_id:u${i}` : `alias:ci_customer_id:c${i}`);
    const run = await verify(exp.id);
    expect(run.status).toBe('failed');
    expect(run.errors.join(' ')).toMatch(/looks incomplete: it holds 5 users for the 12 profiles/);
    expect(run.verify!.driftReport).toBeUndefined();
  });
});
