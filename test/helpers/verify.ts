// Braze proof in tests: the proof segment the customer creates in Braze, changes made in the sandbox
// behind the app's back, and verification runs queued through the API and worked in this process.
import { beforeAll, beforeEach, expect } from 'vitest';
import { exportVerify } from '../../functions/exportVerify';
import { runDriftReport } from '../../functions/runDriftReport';
import type { BrazeSandbox } from '../../scripts/braze-sandbox';
import type { VerifyTiming } from '../../shared/runs/verify-attempt';
import { resetServices, services, type ServiceOverrides } from '../../shared/services';
import { call, useAzurite } from './app';
import { useSandbox } from './engine';

/**
 * A verification test file's world: Azurite (with `settings`), the app's services with quick Braze
 * retries and Braze's export polled every 50 ms, given 3 s before a run gives up on it (`timing`
 * changes that), and the Braze sandbox, reset before each test. `more`: other service overrides.
 */
export function useVerifyWorld(settings: Record<string, string> = {}, timing: VerifyTiming = {}, more: ServiceOverrides = {}) {
  const { azurite } = useAzurite(settings);
  beforeAll(async () => {
    resetServices({ brazeOptions: { backoffBaseMs: 20 }, verifyTiming: { pollMs: 50, maxWaitMs: 3000, ...timing }, ...more });
    await services().ready;
  });
  const sandbox = useSandbox();
  beforeEach(() => sandbox().reset());
  return { azurite, sandbox };
}

/** The membership attribute the test exports write (the default: the Braze segment API id). */
export const SEG = '0000-0000-0000';
export const PROOF = 'proof-segment-1';

/** The Braze segment the customer creates: the membership attribute includes any of the export's segments. */
export const defineProofSegment = (sandbox: BrazeSandbox) =>
  sandbox.exports.define({
    id: PROOF,
    filters: [
      { attribute: SEG, includes: 'A' },
      { attribute: SEG, includes: 'B' },
    ],
  });

/** A user changed in Braze behind the app's back (as a person or another tool would). */
export const edit = (sandbox: BrazeSandbox, user: string, set: Record<string, unknown>, unset: string[] = [], create = false) =>
  expect(sandbox.exports.edit(user, set, unset, create)).not.toBeNull();

/** Plays the queue worker for a run the API queued, until it ends. */
export async function work(runId: string) {
  const app = services();
  await app.storage.runQueue.clearMessages();
  for (let i = 0; i < 20; i++) {
    await app.worker.execute(runId, () => undefined);
    const run = await app.runs.get(runId);
    if (!['queued', 'running'].includes(run.status)) return run;
  }
  throw new Error('run did not end');
}

/** POST /api/exports/{id}/verify (202 with the run's Location), worked until the run ends. */
export async function verify(exportId: string) {
  const res = await call(exportVerify, { method: 'POST', path: `exports/${exportId}/verify`, params: { id: exportId } });
  expect(res.status).toBe(202);
  expect(res.headers.location).toBe(`/api/runs/${res.body.runId}`);
  return work(res.body.runId);
}

/** The drift CSV's rows (header dropped), sorted: GET /api/runs/{id}/drift answers, its bytes read where the route reads them. */
export async function driftRows(runId: string): Promise<string[]> {
  const res = await call(runDriftReport, { method: 'GET', path: `runs/${runId}/drift`, params: { runId } });
  expect(res.status).toBe(200);
  const [container, ...name] = (await services().runs.get(runId)).verify!.driftReport!.split('/');
  const bytes = await services().storage.appBlobs.getContainerClient(container!).getBlobClient(name.join('/')).downloadToBuffer();
  return bytes.toString('utf8').trim().split('\n').slice(1).sort();
}
