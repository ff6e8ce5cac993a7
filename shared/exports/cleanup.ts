// Letting an export go without leaving its membership in Braze, and without Braze getting it back.
// DELETE and detach claim the export for a cleanup run (the same conditional write on its state
// row a run's start makes, so never while a run is going) and mark it `deleting` / `detaching`
// before the run is queued. The cleanup run withdraws the membership; once it has succeeded, whoever
// sees that first — its worker, a redelivered message, the timer, a retry — deletes or detaches the
// export (idempotent). A failed or cancelled cleanup leaves the export as it is until it is retried
// or the export restored (which queues a full sync: the cleanup took profiles off the sync state).
import { principalOf, type Caller, type Principal } from '../auth';
import { AppError, conflict, preconditionFailed } from '../errors';
import type { QueueOutcome } from '../runs/service';
import type { StartOptions } from '../runs/start-options';
import type { Stored } from '../store/connections';
import { CLEANING_UP, type ExportRecord, type ExportsRepo } from '../store/exports';
import type { RunRecord } from '../store/runs';
import { cleanupRoutes } from './cleanup-state';

export interface CleanupRunState {
  /** Drops the export's run bookkeeping and sync state once it is let go. */
  forget(exportId: string): Promise<void>;
  /** Whether Braze may hold the export's membership (it has sync state). */
  hasSyncState(exportId: string): Promise<boolean>;
  /** RunsService.start: claims the export for a run (none other going), then `options.before`, then queues it. */
  start(record: ExportRecord, by: Principal, fullSync: boolean, options: StartOptions): Promise<QueueOutcome>;
  /** Ends a claimed run that has nothing to send as succeeded, with a note. */
  finishAtOnce(run: RunRecord, note: string): Promise<void>;
  /** A run's status, or null when there is no such run. */
  runStatusOf(runId: string): Promise<RunRecord['status'] | null>;
}

export type CleanupStarted = { cleanupRun: { id: string; status: string } } | { done: true };

export class ExportCleanups {
  constructor(
    private readonly repo: ExportsRepo,
    private readonly runState: CleanupRunState,
  ) {}

  /**
   * Claims the export for a cleanup run and marks it `deleting` / `detaching`. With something to
   * withdraw the run is queued (its id answered); otherwise (`keepBrazeData`, never sent) it ends at
   * once and the export is let go here.
   */
  async begin(
    current: Stored<ExportRecord>,
    caller: Caller,
    ifMatch: string | null,
    then: 'delete' | 'detach',
    keepBrazeData: boolean,
  ): Promise<CleanupStarted> {
    if (ifMatch && ifMatch !== current.etag) throw preconditionFailed();
    const { id } = current.value;
    // A cleanup that succeeded already: only the last step is missing.
    if (await this.complete(id)) return { done: true };
    const withdraw = !keepBrazeData && (await this.runState.hasSyncState(id));
    const outcome = await this.runState.start(current.value, principalOf(caller), false, {
      cleanup: then,
      queue: withdraw,
      keepBrazeData: !withdraw,
      before: (run) => this.mark(current, run, then, caller, keepBrazeData),
    });
    if ('active' in outcome) throw runGoing(outcome.active.id, then);
    if (withdraw) return { cleanupRun: outcome.queued };
    await this.runState.finishAtOnce(
      outcome.queued,
      keepBrazeData
        ? 'Braze data kept (keepBrazeData): nothing was withdrawn'
        : 'Nothing to withdraw: the export never sent anything',
    );
    if (!(await this.complete(id, outcome.queued.id))) throw preconditionFailed();
    return { done: true };
  }

  /** `deleting` / `detaching` from the moment the run holds the export; conditional on the ETag read. */
  private async mark(
    current: Stored<ExportRecord>,
    run: RunRecord,
    then: 'delete' | 'detach',
    caller: Caller,
    keepBrazeData: boolean,
  ): Promise<void> {
    const now = new Date().toISOString();
    await this.repo.update(
      {
        ...current.value,
        status: then === 'delete' ? 'deleting' : 'detaching',
        cleanup: { then, runId: run.id, requestedAt: now, requestedBy: caller.name, keepBrazeData },
        updatedAt: now,
        updatedBy: caller.name,
        updatedByPrincipal: principalOf(caller),
      },
      current.etag,
    );
  }

  /**
   * The last step of a succeeded cleanup: the export deleted, or detached. Idempotent, and done by
   * whoever sees the succeeded cleanup with the export still there; true when done (now or before).
   * `runId`: only for that cleanup run.
   */
  async complete(exportId: string, runId?: string): Promise<boolean> {
    const current = await this.repo.get(exportId).catch((e: unknown) => {
      if (e instanceof AppError && e.status === 404) return null;
      throw e;
    });
    if (!current) return runId !== undefined; // deleted already
    const cleanup = current.value.cleanup;
    if (!cleanup || !CLEANING_UP.includes(current.value.status) || (runId && cleanup.runId !== runId)) return false;
    if ((await this.runState.runStatusOf(cleanup.runId)) !== 'succeeded') return false;
    // The sync state first: should the last write fail, the export is still `deleting` and this runs again.
    await this.runState.forget(exportId);
    try {
      if (cleanup.then === 'delete') await this.repo.delete(exportId, current.etag);
      else
        await this.repo.update(
          {
            ...current.value,
            connectionId: null,
            status: 'inactive',
            cleanup: null,
            schedule: { ...current.value.schedule, enabled: false },
            updatedAt: new Date().toISOString(),
          },
          current.etag,
        );
    } catch (e) {
      if (e instanceof AppError && e.status === 404) return true;
      throw e;
    }
    return true;
  }

  /** POST …/retry-cleanup: a failed or cancelled cleanup runs again (with the same intent). */
  async retry(current: Stored<ExportRecord>, caller: Caller, ifMatch: string | null): Promise<CleanupStarted> {
    const cleanup = current.value.cleanup;
    if (!cleanup || !CLEANING_UP.includes(current.value.status))
      throw conflict('This export is not being deleted or detached: there is no cleanup to retry', {
        status: current.value.status,
      });
    return this.begin(current, caller, ifMatch, cleanup.then, cleanup.keepBrazeData);
  }

  /**
   * POST …/restore: the export goes back to `active` and a full sync is queued (the cleanup took
   * the profiles it withdrew off the sync state; the full sync sends their membership again).
   * Refused while the cleanup runs (cancel it first) or once it has succeeded.
   */
  async restore(current: Stored<ExportRecord>, caller: Caller, ifMatch: string | null): Promise<QueueOutcome> {
    const { value } = current;
    if (!value.cleanup || !CLEANING_UP.includes(value.status))
      throw conflict('This export is not being deleted or detached: there is nothing to restore', { status: value.status });
    if (ifMatch && ifMatch !== current.etag) throw preconditionFailed();
    if ((await this.runState.runStatusOf(value.cleanup.runId)) === 'succeeded' && (await this.complete(value.id)))
      throw conflict(`The cleanup succeeded: the export was ${value.cleanup.then === 'delete' ? 'deleted' : 'detached'}`);
    const outcome = await this.runState.start(value, principalOf(caller), true, {
      restoring: true,
      before: async () => {
        const now = new Date().toISOString();
        await this.repo.update(
          {
            ...value,
            status: 'active',
            cleanup: null,
            updatedAt: now,
            updatedBy: caller.name,
            updatedByPrincipal: principalOf(caller),
          },
          current.etag,
        );
      },
    });
    if ('active' in outcome)
      throw conflict('The cleanup run is still going: cancel it first, then restore the export', {
        activeRun: { id: outcome.active.id, status: outcome.active.status, location: `/api/runs/${outcome.active.id}` },
      });
    return outcome;
  }
}

/** What GET shows of a cleanup: the stored intent, its run's status, and the ways out. */
export async function cleanupView(record: ExportRecord, runStatusOf: CleanupRunState['runStatusOf']) {
  if (!record.cleanup || !CLEANING_UP.includes(record.status)) return null;
  const status = await runStatusOf(record.cleanup.runId);
  return {
    ...record.cleanup,
    run: { id: record.cleanup.runId, status, location: `/api/runs/${record.cleanup.runId}` },
    /** Retry or restore apply once the run failed or was cancelled. */
    stuck: status === 'failed' || status === 'cancelled' || status === 'partially_succeeded',
    ...cleanupRoutes(record.id),
  };
}

/** 409: a run of the export is going, so it cannot be deleted or detached now. */
export const runGoing = (runId: string, action: 'delete' | 'detach') =>
  conflict(
    `A run of this export is going; wait for it to finish (or cancel it) before ${action === 'delete' ? 'deleting' : 'detaching'}`,
    { activeRun: { id: runId, location: `/api/runs/${runId}` } },
  );
