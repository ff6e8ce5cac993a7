// Braze proof, repair edges: a repair never undoes what an export run did after the verification;
// a user the export created under an alias and later identified in Braze is still the export's; a
// value another tool set on a field CI leaves empty is cleared by a repair.
import { describe, expect, it } from 'vitest';
import { runRepair } from '../../functions/runRepair';
import { bucketOf, parseBucketState, SyncStateStore } from '../../shared/engine';
import { services } from '../../shared/services';
import { CONTAINERS } from '../../shared/store/clients';
import { applyRepair } from '../../shared/verify/repair';
import { call } from '../helpers/app';
import { defineProofSegment, edit, PROOF, SEG, useVerifyWorld, verify, work } from '../helpers/verify';
import { rows } from '../helpers/ci-export';
import { mutableExport, runNow } from '../helpers/engine';

const { sandbox } = useVerifyWorld();

const repairCall = (runId: string) => call(runRepair, { method: 'POST', path: `runs/${runId}/repair`, params: { runId } });

async function repaired(runId: string) {
  const res = await repairCall(runId);
  expect(res.status).toBe(202);
  return work(res.body.runId);
}

describe('repairing a verification', () => {
  it('is refused once an export run ended after it: a member CI added since keeps the membership', async () => {
    defineProofSegment(sandbox());
    const { exp, rewrite } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(6)] }], {
      proofSegmentId: PROOF,
    });
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    edit(sandbox(), 'external_id:u9', { [SEG]: ['A'] }, [], true); // given the membership behind the app's back
    const v1 = await verify(exp.id);
    expect(v1.verify!.counts).toMatchObject({ unknown: 1, matched: 6 });
    // Then CI adds c9 (u9) to A and the export runs: u9 is a real member now.
    await rewrite([{ segment: 'A', partitions: [rows(6) + rows(1, { from: 9 })] }]);
    expect((await runNow(exp.id)).run.status).toBe('succeeded');

    const res = await repairCall(v1.id);
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/ran since this verification: verify again/);
    expect(sandbox().profiles.get('external_id:u9')!.attributes[SEG]).toEqual(['A']);
    expect((await services().runs.get(v1.id)).verify!.repair).toBeUndefined();
    const v2 = await verify(exp.id);
    expect(v2.verify!.counts).toMatchObject({ matched: 7, missing: 0, extra: 0, stale: 0, unknown: 0 });
  });

  it('a user created under an alias and later identified in Braze (external_id added) is matched by the alias', async () => {
    defineProofSegment(sandbox());
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(4)] }], { proofSegmentId: PROOF });
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    // The customer's app calls /users/identify: Braze keeps the alias and adds the external_id.
    (sandbox().profiles.get('alias:ci_customer_id:c2') as any).identifier.external_id = 'app-user-2';
    const v = await verify(exp.id);
    expect(v.verify!.counts).toMatchObject({ inState: 4, inBraze: 4, matched: 4, missing: 0, unknown: 0 });
    expect(v.verify!.driftReport).toBeNull();
    // Drift on that user is told by its alias, and its repair re-sends it: no withdrawal by its external_id.
    edit(sandbox(), 'alias:ci_customer_id:c2', { [SEG]: ['B'] }); // A removed in the dashboard (B: not this export's)
    const v2 = await verify(exp.id);
    expect(v2.verify!.counts).toMatchObject({ matched: 3, missing: 1, unknown: 0 });
    const cost = await call(runRepair, {
      method: 'POST',
      path: `runs/${v2.id}/repair`,
      params: { runId: v2.id },
      body: { dryRun: true },
    });
    expect(cost.body).toMatchObject({ profiles: 1, withdrawals: 0 });
    expect((await repaired(v2.id)).status).toBe('succeeded');
    expect(sandbox().profiles.get('alias:ci_customer_id:c2')!.attributes[SEG]).toEqual(['A']);
  });

  it("a user the state knows by external_id that also carries the export's alias in Braze is paired with it, not missing + unknown", async () => {
    defineProofSegment(sandbox());
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(40)] }], { proofSegmentId: PROOF });
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    // Created by alias long ago, identified since: Braze's user u1..u39 (odd) carries the export's alias too.
    for (let i = 1; i <= 40; i += 2)
      (sandbox().profiles.get(`external_id:u${i}`) as any).identifier.user_alias = {
        alias_name: `c${i}`,
        alias_label: 'ci_customer_id',
      };
    const v = await verify(exp.id);
    expect(v.verify!.counts).toMatchObject({ inState: 40, inBraze: 40, matched: 40, missing: 0, unknown: 0 });
    edit(sandbox(), 'external_id:u7', { first_name: 'Edited' });
    expect(sandbox().deleteUser('external_id:u9')).toBe(true);
    const v2 = await verify(exp.id);
    expect(v2.verify!.counts).toMatchObject({ matched: 38, stale: 1, missing: 1, unknown: 0 });
    const res = await call(runRepair, {
      method: 'POST',
      path: `runs/${v2.id}/repair`,
      params: { runId: v2.id },
      body: { dryRun: true },
    });
    expect(res.body).toMatchObject({ profiles: 2, withdrawals: 0 });
  });

  it('clears a value another tool set on a mapped field CI leaves empty (stale), so the next verification is clean', async () => {
    defineProofSegment(sandbox());
    const name = (i: number) => (i === 3 ? '' : `Name${i}`);
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(6, { name })] }], {
      proofSegmentId: PROOF,
    });
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    edit(sandbox(), 'external_id:u3', { first_name: 'ByOtherTool' });
    const v1 = await verify(exp.id);
    expect(v1.verify!.counts).toMatchObject({ stale: 1, matched: 5 });
    expect((await repaired(v1.id)).status).toBe('succeeded');
    expect(sandbox().profiles.get('external_id:u3')!.attributes.first_name ?? null).toBeNull();
    const v2 = await verify(exp.id);
    expect(v2.verify!.counts).toMatchObject({ matched: 6, stale: 0, missing: 0, extra: 0, unknown: 0 });
  });

  it('two repairs of one verification at once: exactly one is queued, the other gets 409, nothing is sent twice', async () => {
    defineProofSegment(sandbox());
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(6)] }], { proofSegmentId: PROOF });
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    edit(sandbox(), 'external_id:u1', { first_name: 'Edited' });
    edit(sandbox(), 'external_id:u3', { [SEG]: [] });
    const v = await verify(exp.id);
    expect(v.verify!.counts).toMatchObject({ stale: 1, missing: 1 });
    const before = sandbox().stats.objectsProcessed;
    const both = await Promise.all([repairCall(v.id), repairCall(v.id)]);
    expect(both.map((r) => r.status).sort()).toEqual([202, 409]);
    const won = both.find((r) => r.status === 202)!;
    expect((await services().runs.get(v.id)).verify!.repair!.runId).toBe(won.body.runId);
    // Only one export run was queued for it; worked (twice, as a duplicate message would), it sends the drift once.
    const repairs = (await services().runs.listForExport(exp.id)).filter((r) => r.repairOf === v.id);
    expect(repairs.map((r) => r.id)).toEqual([won.body.runId]);
    expect((await work(won.body.runId)).counts).toMatchObject({ sent: 2, failed: 0 });
    await services().worker.execute(won.body.runId, () => undefined);
    expect(sandbox().stats.objectsProcessed - before).toBe(2);
    expect((await repairCall(v.id)).status).toBe(409);
    expect((await verify(exp.id)).verify!.counts).toMatchObject({ matched: 6, stale: 0, missing: 0 });
  });

  it('never marks for withdrawal an unknown user that a real state line holds now', async () => {
    defineProofSegment(sandbox());
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(4)] }], { proofSegmentId: PROOF });
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    const state = new SyncStateStore(services().storage.appBlobs.getContainerClient(CONTAINERS.state), exp.id);
    const manifest = (await state.readManifest())!;
    const key = (identity: string) => `\u0000verify-unknown:${identity}`;
    const bucketFor = (identity: string) => bucketOf(key(identity), manifest.bucketCount);
    // A plan made from an older verification: u1 (CI's c1, sent) and stranger-1 looked unknown then.
    const withdraw = new Map<number, string[]>();
    for (const id of ['e:u1', 'e:stranger-1']) withdraw.set(bucketFor(id), [...(withdraw.get(bucketFor(id)) ?? []), id]);
    await applyRepair(
      state,
      { resend: new Map(), withdraw, profiles: 0, withdrawals: 2, unaddressable: 0 },
      manifest.definition!,
    );
    const keys = async (identity: string) => [
      ...parseBucketState((await state.readBucket(bucketFor(identity))).bytes!).entries.keys(),
    ];
    expect(await keys('e:u1')).not.toContain(key('e:u1'));
    expect(await keys('e:stranger-1')).toContain(key('e:stranger-1'));
  });
});
