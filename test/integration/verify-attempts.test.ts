// Braze proof across attempts: a verification waits for Braze's export over several attempts of its
// run (each time-boxed; here at 1 s while verifying), so what it learnt while waiting must outlive an
// attempt, and what it kept must not outlive the run. On Azurite and the Braze sandbox.
import { afterEach, describe, expect, it } from 'vitest';
import { exportVerify } from '../../functions/exportVerify';
import { resetServices, services } from '../../shared/services';
import { runFolder } from '../../shared/runs/pinned-snapshot';
import { CONTAINERS, TABLES } from '../../shared/store/clients';
import { RunsRepo } from '../../shared/store/runs';
import { call } from '../helpers/app';
import { defineProofSegment, PROOF, useVerifyWorld, verify } from '../helpers/verify';
import { rows } from '../helpers/ci-export';
import { ADMIN, mutableExport, runNow } from '../helpers/engine';

const timing = { pollMs: 100, maxWaitMs: 8000, stableListingMs: 1800 };
const { azurite, sandbox } = useVerifyWorld({}, timing);

/** From here on every attempt of a run is time-boxed at 1 s: a wait longer than that spans attempts. */
function oneSecondAttempts() {
  process.env.WORKER_TIME_BUDGET_SECONDS = '1';
  resetServices({ brazeOptions: { backoffBaseMs: 20 }, verifyTiming: timing });
}
afterEach(() => {
  delete process.env.WORKER_TIME_BUDGET_SECONDS;
  resetServices({ brazeOptions: { backoffBaseMs: 20 }, verifyTiming: timing });
});

async function exportedAndSent() {
  defineProofSegment(sandbox());
  const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(6)] }], { proofSegmentId: PROOF });
  expect((await runNow(exp.id)).run.status).toBe('succeeded');
  return exp;
}

/** A verification whose first attempt asked Braze, kept the download URL and went back on the queue (Braze never ready). */
async function waitingWithUrlSaved() {
  const exp = await exportedAndSent();
  sandbox().exports.settings.neverReady = true;
  oneSecondAttempts();
  const res = await call(exportVerify, { method: 'POST', path: `exports/${exp.id}/verify`, params: { id: exp.id } });
  const runId = res.body.runId as string;
  const app = services();
  await app.storage.runQueue.clearMessages();
  await app.worker.execute(runId, () => undefined); // asks Braze, keeps the URL, waits, re-queued
  const saved = app.storage.appBlobs
    .getContainerClient(CONTAINERS.reports)
    .getBlobClient(`${runFolder(runId)}/braze-export.json`);
  expect(await saved.exists()).toBe(true);
  return { exp, runId, saved };
}

describe('a verification over several attempts', () => {
  it('container delivery: the stable-listing window goes on across re-queued attempts instead of starting again', async () => {
    sandbox().exports.settings.blob = { connectionString: azurite().connectionString, container: 'braze-exports-attempts' };
    const exp = await exportedAndSent();
    await services().connections.update(
      ADMIN,
      exp.connectionId!,
      { exportContainer: { container: 'braze-exports-attempts' } },
      null,
    );
    // The window (1.8 s) is longer than an attempt (1 s): only a window carried over can end.
    oneSecondAttempts();
    const run = await verify(exp.id);
    expect(run.errors).toEqual([]);
    expect(run.status).toBe('succeeded');
    expect(run.verify!.counts).toMatchObject({ inBraze: 6, matched: 6 });
    expect(run.attempts).toBeGreaterThanOrEqual(2);
    expect(run.verify!.listing!.unchangedSince).toMatch(/^\d{4}-/);
  });

  it('a run given up after too many troubled attempts deletes the saved download URL', async () => {
    const { runId, saved } = await waitingWithUrlSaved();
    const app = services();
    // Then five attempts die (killed, out of memory): the next one gives the run up.
    const repo = new RunsRepo(app.storage.table(TABLES.runs));
    const stored = await repo.get(runId);
    await repo.update({ ...stored.value, attempts: stored.value.attempts + 5 }, stored.etag);
    await app.worker.execute(runId, () => undefined);
    const run = await app.runs.get(runId);
    expect(run.status).toBe('failed');
    expect(run.errors.at(-1)).toMatch(/^Gave up after 5 attempts/);
    expect(await saved.exists()).toBe(false);
  });

  it('a run that ends while the export state cannot be written still deletes the saved download URL', async () => {
    const { exp, runId, saved } = await waitingWithUrlSaved();
    const app = services();
    // The export's state row is damaged: freeing the export after the run is recorded finished fails.
    await app.storage.table(TABLES.exports).updateEntity({ partitionKey: 'state', rowKey: exp.id, data: '{' }, 'Replace');
    const repo = new RunsRepo(app.storage.table(TABLES.runs));
    const stored = await repo.get(runId);
    await repo.update({ ...stored.value, attempts: stored.value.attempts + 5 }, stored.etag);
    await expect(app.worker.execute(runId, () => undefined)).rejects.toThrow(/JSON/);
    expect((await app.runs.get(runId)).status).toBe('failed');
    expect(await saved.exists()).toBe(false);
  });
});
