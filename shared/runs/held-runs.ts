// Runs the guard held: who may decide on them, and the decisions. Approved, a held run is queued
// again and sends exactly what it held; dismissed, it ends `cancelled`, and the timer does not weigh
// that snapshot again.
import { principalOf, requireRole, type Caller } from '../auth';
import type { ConnectionsService } from '../connections/service';
import { conflict, forbidden, preconditionFailed } from '../errors';
import { guardOf } from '../exports/schema';
import type { Stored } from '../store/connections';
import type { ExportStateRepo } from '../store/export-state';
import type { ExportRecord, ExportsRepo } from '../store/exports';
import type { RunRecord, RunsRepo } from '../store/runs';

/** What the decisions read and write (RunsService gives them its own). */
export interface HeldRunDeps {
  runs: RunsRepo;
  exports: ExportsRepo;
  state: ExportStateRepo;
  connections: Pick<ConnectionsService, 'assertMayWorkWith'>;
  enqueue: (runId: string) => Promise<void>;
  finishIfUnchanged: (stored: Stored<RunRecord>, status: RunRecord['status'], errors: string[]) => Promise<RunRecord | null>;
}

/**
 * POST /api/runs/{id}/approve: a held run is queued again and sends exactly what it held (from
 * the snapshot it is pinned to; a newer snapshot is the timer's to evaluate afresh).
 */
export async function approveHeld(deps: HeldRunDeps, caller: Caller, runId: string): Promise<RunRecord> {
  const { stored, by } = await heldRun(deps, caller, runId);
  const queued: RunRecord = { ...stored.value, status: 'queued', approved: { by: by.name, at: new Date().toISOString() } };
  if (!(await deps.runs.updateIfUnchanged(queued, stored.etag))) throw preconditionFailed();
  await deps.enqueue(runId);
  return queued;
}

/** POST /api/runs/{id}/dismiss: a held run ends `cancelled`; nothing was sent, Braze and the sync state are as they were. */
export async function dismissHeld(deps: HeldRunDeps, caller: Caller, runId: string): Promise<RunRecord> {
  const { stored, by } = await heldRun(deps, caller, runId);
  const done = await deps.finishIfUnchanged(stored, 'cancelled', [`Dismissed by ${by.name}: nothing was sent`]);
  if (!done) throw preconditionFailed();
  await rememberDismissed(deps.state, stored.value);
  return done;
}

/** The timer does not weigh (and hold, and alert on) a dismissed snapshot again; a newer one, or a manual run, goes on. */
export async function rememberDismissed(state: ExportStateRepo, run: RunRecord): Promise<void> {
  const snapshotId = run.held?.snapshotId;
  if (snapshotId) await state.modify(run.exportId, (s) => ({ ...s, dismissedSnapshotId: snapshotId }));
}

/** The held run a caller may decide on (Admin; Contributor on a shared connection where the export allows it). */
async function heldRun(deps: HeldRunDeps, caller: Caller, runId: string) {
  requireRole(caller, 'Admin', 'Contributor');
  const stored = await deps.runs.get(runId);
  const record = (await deps.exports.get(stored.value.exportId)).value;
  await deps.connections.assertMayWorkWith(caller, record.connectionId);
  assertMayApprove(caller, record);
  if (stored.value.status !== 'held')
    throw conflict(`The run is ${stored.value.status}, not held`, { run: { id: runId, status: stored.value.status } });
  return { stored, by: principalOf(caller) };
}

/** Approving or dismissing a held run (or running an export approved up front): Admins, and Contributors where the export's guard lets them. */
export function assertMayApprove(caller: Caller, record: ExportRecord): void {
  if (caller.role !== 'Admin' && !guardOf(record).contributorsMayApprove)
    throw forbidden('Only an Admin may approve or dismiss runs of this export (its guard does not let Contributors)');
}
