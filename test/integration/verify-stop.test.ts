// A verification that compares for a long time stops like any run: a cancel ends it `cancelled` within
// seconds, and a worker that lost the export's lease stops without writing the outcome (the run is
// the other worker's now). Here every profile of ten segments is stale, over many buckets, and each
// comparison of a user is held 5 ms longer than it takes, so the whole takes over ten seconds whatever
// the machine's speed. On Azurite and the sandbox.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { exportVerify } from '../../functions/exportVerify';
import { runCancel } from '../../functions/runCancel';
import { services } from '../../shared/services';
import { BrazeUserReader } from '../../shared/verify/braze-user';
import { CONTAINERS } from '../../shared/store/clients';
import { call } from '../helpers/app';
import { edit, PROOF, SEG, useVerifyWorld } from '../helpers/verify';
import { rows } from '../helpers/ci-export';
import { mutableExport, runNow } from '../helpers/engine';
import { exportIsFree, noLog, until } from '../helpers/worker-runs';

// The state (and so the comparison) in many buckets; Braze's export given 10 s; a cancel seen within a second.
const { sandbox } = useVerifyWorld({ SYNC_BUCKET_TARGET_BYTES: '4096' }, { maxWaitMs: 10_000 }, { heartbeatMs: 1000 });

const SEGMENTS = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'];
const N = 2000;
const HOLD_MS = 5;
/** Profiles the sample test reads: 6,000 at 50 a request, 40 requests a second, about 3 s of reading. */
const SAMPLED = 6000;

/** An export of N profiles in A (one more in each other segment), sent, then every profile edited in Braze. */
async function allStale() {
  sandbox().exports.define({ id: PROOF, filters: SEGMENTS.map((s) => ({ attribute: SEG, includes: s })) });
  const tables = SEGMENTS.map((segment, i) => ({ segment, partitions: [i === 0 ? rows(N) : rows(1, { from: N + i })] }));
  const { exp } = await mutableExport(sandbox().url, tables, { proofSegmentId: PROOF });
  expect((await runNow(exp.id)).run.status).toBe('succeeded');
  for (let i = 1; i <= N; i++)
    edit(sandbox(), i % 2 ? `external_id:u${i}` : `alias:ci_customer_id:c${i}`, { first_name: `Edited${i}` });
  return exp;
}

/**
 * Makes each comparison of a user take HOLD_MS longer; returns the spy that counts them. The thread
 * is blocked as a long compare would block it, but asleep (Atomics.wait), not burning a core.
 */
function slowComparisons() {
  const compare = BrazeUserReader.prototype.compare;
  const asleep = new Int32Array(new SharedArrayBuffer(4));
  return vi.spyOn(BrazeUserReader.prototype, 'compare').mockImplementation(function (this: BrazeUserReader, ...args) {
    Atomics.wait(asleep, 0, 0, HOLD_MS);
    return compare.apply(this, args);
  });
}
afterEach(() => vi.restoreAllMocks());

/** Queues a verification and starts working it; resolves once it compares (Braze's export downloaded and spread). */
async function verifying(exportId: string) {
  const comparisons = slowComparisons();
  const res = await call(exportVerify, { method: 'POST', path: `exports/${exportId}/verify`, params: { id: exportId } });
  expect(res.status).toBe(202);
  const runId = res.body.runId as string;
  const app = services();
  await app.storage.runQueue.clearMessages();
  const working = app.worker.execute(runId, noLog);
  await until(() => comparisons.mock.calls.length > 0);
  return { runId, working };
}

describe('a long verification', () => {
  it('is cancelled within seconds while it compares, and reports nothing', async () => {
    const exp = await allStale();
    const { runId, working } = await verifying(exp.id);
    const asked = Date.now();
    const res = await call(runCancel, { method: 'POST', path: `runs/${runId}/cancel`, params: { runId }, as: 'Admin' });
    expect(res.status).toBe(202);
    await working;
    expect(Date.now() - asked).toBeLessThan(8000);
    const run = await services().runs.get(runId);
    expect(run.status).toBe('cancelled');
    expect(run.errors.at(-1)).toMatch(/^Cancelled by .* while comparing/);
    expect(run.verify!.comparedAt).toBeUndefined();
    expect(run.verify!.driftReport).toBeUndefined();
    expect(await exportIsFree(exp.id)).toBe(true);
  }, 120_000);

  it('whose worker lost the export lease stops comparing and leaves the outcome to the worker that took it', async () => {
    const exp = await allStale();
    const { runId, working } = await verifying(exp.id);
    // Another worker takes the export's lease (as after a stall): this one's renewal is refused.
    const lease = services().storage.appBlobs.getContainerClient(CONTAINERS.leases).getBlobClient(exp.id).getBlobLeaseClient();
    await lease.breakLease(0);
    await lease.acquireLease(15);
    const broke = Date.now();
    await working;
    expect(Date.now() - broke).toBeLessThan(8000);
    const run = await services().runs.get(runId);
    expect(run.status).toBe('running'); // not finished by this worker
    expect(run.verify!.comparedAt).toBeUndefined();
    await lease.releaseLease();
  }, 120_000);

  it('by sample, whose worker lost the export lease, stops reading and does not report what it did not read', async () => {
    sandbox().exports.define({ id: PROOF, filters: [{ attribute: SEG, includes: 'A' }] });
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(SAMPLED)] }], {
      proofSegmentId: PROOF,
    });
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    const res = await call(exportVerify, {
      method: 'POST',
      path: `exports/${exp.id}/verify`,
      params: { id: exp.id },
      body: { sample: SAMPLED },
    });
    expect(res.status).toBe(202);
    const runId = res.body.runId as string;
    const app = services();
    await app.storage.runQueue.clearMessages();
    const working = app.worker.execute(runId, noLog);
    await until(async () => (await app.runs.get(runId)).status === 'running');
    await new Promise((r) => setTimeout(r, 300));
    const lease = app.storage.appBlobs.getContainerClient(CONTAINERS.leases).getBlobClient(exp.id).getBlobLeaseClient();
    await lease.breakLease(0);
    await lease.acquireLease(15);
    await working;
    const run = await app.runs.get(runId);
    expect(run.status).toBe('running'); // left to the worker that took the lease
    expect(run.verify!.confidence).toBeUndefined();
    await lease.releaseLease();
  }, 120_000);
});
