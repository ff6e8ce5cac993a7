// Starting and reading runs. One run per export at a time, whoever starts it: the export's state
// row names its active run, claimed with a conditional (ETag) write before anything is queued.
import type { QueueClient } from '@azure/storage-queue';
import { principalOf, requireRole, type Caller, type Principal } from '../auth';
import { AppError, conflict, preconditionFailed } from '../errors';
import type { ConnectionsService } from '../connections/service';
import type { ExportsRepo, ExportRecord } from '../store/exports';
import { emptyState, type ExportStateRepo } from '../store/export-state';
import type { Stored } from '../store/connections';
import { FINISHED, newRunId, type RunRecord, type RunsRepo } from '../store/runs';
import { approveHeld, assertMayApprove, dismissHeld, rememberDismissed, type HeldRunDeps } from './held-runs';
import { refuseUnlessRunnable, type StartOptions } from './start-options';

export interface RunMessage {
  runId: string;
}

export const encodeMessage = (m: RunMessage) => Buffer.from(JSON.stringify(m)).toString('base64');

export type QueueOutcome = { queued: RunRecord } | { active: RunRecord };

export class RunsService {
  constructor(
    private readonly runs: RunsRepo,
    private readonly exports: ExportsRepo,
    private readonly state: ExportStateRepo,
    private readonly connections: ConnectionsService,
    private readonly runQueue: QueueClient,
    /** After a run is recorded finished, however it ended (a verification's saved download URL is deleted). Never throws. */
    private readonly afterFinish: (run: RunRecord) => Promise<void> = async () => undefined,
  ) {}

  get(runId: string): Promise<RunRecord> {
    return this.runs.get(runId).then((r) => r.value);
  }

  /** The export's newest runs (up to 50). */
  async listForExport(exportId: string): Promise<RunRecord[]> {
    return (await this.pageForExport(exportId)).runs;
  }

  /** GET /api/exports/{id}/runs: 50 at a time, newest first; `next` continues after them. */
  async pageForExport(exportId: string, continuationToken?: string): Promise<{ runs: RunRecord[]; next?: string }> {
    await this.exports.get(exportId); // 404 for an unknown export
    return this.runs.pageForExport(exportId, continuationToken);
  }

  /** Hands a run (new or continued) to the queue worker. */
  async enqueue(runId: string, delaySeconds = 0): Promise<void> {
    await this.runQueue.sendMessage(encodeMessage({ runId }), { visibilityTimeout: delaySeconds || undefined });
  }

  /** Queues a run unless one is active. Does not check roles (the timer calls it too). */
  async start(
    record: ExportRecord,
    trigger: RunRecord['trigger'],
    by: Principal | string,
    fullSync = false,
    options: StartOptions = {},
  ): Promise<QueueOutcome> {
    refuseUnlessRunnable(record, options);
    const now = new Date();
    const run: RunRecord = {
      id: newRunId(record.id, now.getTime()),
      exportId: record.id,
      trigger,
      ...(options.cleanup ? { kind: 'cleanup' as const, then: options.cleanup } : {}),
      ...(options.keepBrazeData ? { keepBrazeData: true } : {}),
      ...(options.verify ? { kind: 'verify' as const, verify: options.verify } : {}),
      ...(options.repairOf ? { repairOf: options.repairOf } : {}),
      fullSync,
      status: 'queued',
      snapshot: null,
      queuedAt: now.toISOString(),
      queuedBy: typeof by === 'string' ? by : by.name,
      queuedByPrincipal: typeof by === 'string' ? null : by,
      startedAt: null,
      finishedAt: null,
      heartbeatAt: null,
      attempts: 0,
      errors: [],
      rejectedReport: null,
      ...(options.approved ? { approved: options.approved } : {}),
    };
    // The run row exists before it is claimed, so a claimed id always names a real run. Should the
    // claim fail, the row goes: a queued run nothing enqueues (and the timer never sees) must not stay.
    await this.runs.create(run);
    let active: RunRecord | null;
    try {
      active = await this.claim(record.id, run.id);
    } catch (e) {
      await this.runs.delete(run.id);
      throw e;
    }
    if (active) {
      await this.runs.delete(run.id);
      return { active };
    }
    if (options.before) {
      try {
        await options.before(run);
      } catch (e) {
        await this.release(record.id, run.id);
        await this.runs.delete(run.id);
        throw e;
      }
    }
    if (options.queue === false) return { queued: run };
    try {
      await this.enqueue(run.id);
    } catch (e) {
      await this.finish(run, 'failed', [`Could not queue the run: ${(e as Error).message}`], null);
      throw e;
    }
    return { queued: run };
  }

  /** Frees the export from `runId` (claimed but never started). */
  private async release(exportId: string, runId: string): Promise<void> {
    await this.state.modify(exportId, (s) => (s.activeRunId === runId ? { ...s, activeRunId: null } : null));
  }

  /** Makes `runId` the export's active run; returns the unfinished run that holds it instead, if any. */
  private async claim(exportId: string, runId: string): Promise<RunRecord | null> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.state.get(exportId);
      const activeId = current?.value.activeRunId;
      if (activeId) {
        const active = await this.runs.get(activeId).then(
          (r) => r.value,
          () => null,
        );
        if (active && !FINISHED.includes(active.status)) return active;
      }
      try {
        await this.state.put(exportId, { ...(current?.value ?? emptyState()), activeRunId: runId }, current?.etag ?? null);
        return null;
      } catch (e) {
        const status = (e as { status?: number }).status;
        if ((status === 412 || status === 409) && attempt < 5) continue; // someone else moved first: look again
        throw e;
      }
    }
  }

  /**
   * Records a run's outcome and frees its export. Only a fully delivered snapshot counts as
   * exported (`exported`); otherwise the next tick tries again.
   */
  async finish(
    run: RunRecord,
    status: RunRecord['status'],
    errors: string[],
    exported: { snapshotId: string; definition: string } | null,
    /** How the finished run is written; false = someone else finished it first (the export is theirs to free). */
    write: (done: RunRecord) => Promise<boolean> = (done) => this.runs.update(done).then(() => true),
  ): Promise<RunRecord> {
    const done: RunRecord = {
      ...run,
      status,
      phase: 'done',
      finishedAt: new Date().toISOString(),
      waitingFor: null,
      errors: [...run.errors, ...errors],
    };
    if (!(await write(done))) return done;
    const delivered = status === 'succeeded' && exported;
    // The run is recorded finished: what it kept (a verification's download URL) goes whatever happens next.
    try {
      await this.state.modify(run.exportId, (s) => ({
        ...s,
        activeRunId: s.activeRunId === run.id ? null : s.activeRunId,
        lastSnapshotId: delivered ? exported.snapshotId : s.lastSnapshotId,
        lastDefinition: delivered ? exported.definition : s.lastDefinition,
        // A run that was cancelled, dismissed or failed does not move the reference the guard compares with.
        lastSegmentRows:
          (status === 'succeeded' || status === 'partially_succeeded') && run.kind !== 'cleanup' && done.segments
            ? Object.fromEntries(Object.entries(done.segments).map(([segment, v]) => [segment, v.rows]))
            : s.lastSegmentRows,
        ...(run.kind === 'verify'
          ? { lastVerify: { id: run.id, status, finishedAt: done.finishedAt, drift: done.verify?.counts } }
          : {
              lastRun: {
                id: run.id,
                status,
                finishedAt: done.finishedAt,
                counts: done.counts,
                brazeRefusals: done.bucketCounts?.rejected ?? 0,
              },
            }),
      }));
    } finally {
      await this.afterFinish(done);
    }
    return done;
  }

  /** Finishes the run as `stored` read it, only if nobody wrote it since; null when somebody did. */
  async finishIfUnchanged(stored: Stored<RunRecord>, status: RunRecord['status'], errors: string[]): Promise<RunRecord | null> {
    let written = false;
    const done = await this.finish(
      stored.value,
      status,
      errors,
      null,
      async (d) => (written = (await this.runs.updateIfUnchanged(d, stored.etag)) !== null),
    );
    return written ? done : null;
  }

  /**
   * POST /api/runs/{id}/cancel: Admin, or Contributor on a shared connection. A queued run ends
   * `cancelled` at once; a running one is asked to stop, and its worker stops within seconds
   * (batches in flight are answered and recorded first).
   */
  async cancel(caller: Caller, runId: string): Promise<RunRecord> {
    requireRole(caller, 'Admin', 'Contributor');
    let stored = await this.runs.get(runId);
    // Only an export that is gone lets the run be cancelled without a connection check; any other
    // failure to read it is an error, never a pass for a Contributor.
    const exp = await this.exports.get(stored.value.exportId).then(
      (e) => e.value,
      (e: unknown) => {
        if (e instanceof AppError && e.status === 404) return null;
        throw e;
      },
    );
    await this.connections.assertMayWorkWith(caller, exp?.connectionId ?? null);
    const by = principalOf(caller);
    // Cancelling a held run dismisses it: the guard's rule for who decides applies.
    if (stored.value.status === 'held' && exp) assertMayApprove(caller, exp);
    for (let attempt = 0; attempt <= 10; attempt++) {
      const run = stored.value;
      if (FINISHED.includes(run.status))
        throw conflict(`The run is already ${run.status}`, { run: { id: run.id, status: run.status } });
      const asked: RunRecord = { ...run, cancelRequested: { at: new Date().toISOString(), by: by.name } };
      let done: RunRecord | null | undefined;
      // No worker holds a queued or held run: it ends here (a message still on its way finds it finished).
      if (run.status === 'queued' || run.status === 'held')
        done = await this.finishIfUnchanged({ value: asked, etag: stored.etag }, 'cancelled', [
          `Cancelled by ${by.name} before it started`,
        ]);
      // Nor one waiting for the next hour of its connection's hourly cap (a worker that starts it clears waitingFor).
      else if (run.waitingFor && run.resumesAt && Date.parse(run.resumesAt) > Date.now())
        done = await this.finishIfUnchanged({ value: asked, etag: stored.etag }, 'cancelled', [
          `Cancelled by ${by.name} while it waited for the connection's hourly request cap: what Braze took is recorded; the next run sends the rest`,
        ]);
      else if (run.cancelRequested) return run;
      else done = (await this.runs.updateIfUnchanged(asked, stored.etag))?.value;
      if (done) {
        if (run.status === 'held') await rememberDismissed(this.state, run);
        return done;
      }
      // The worker wrote meanwhile (or started the run): look again.
      stored = await this.runs.get(runId);
    }
    throw preconditionFailed();
  }

  /**
   * A run's message reached the poison queue (its worker failed on every dequeue): the run ends
   * `failed` and its export is free again, instead of being re-queued by the timer forever.
   */
  async failPoisoned(runId: string): Promise<RunRecord | null> {
    const reason =
      'The worker failed on every try of this run (the message went to the export-runs-poison queue); see the errors above, fix the cause, then run the export again';
    for (let attempt = 0; attempt <= 10; attempt++) {
      const stored = await this.runs.get(runId).catch(() => null);
      if (!stored || FINISHED.includes(stored.value.status)) return null;
      const done = await this.finishIfUnchanged(stored, 'failed', [reason]);
      if (done) return done;
    }
    throw preconditionFailed();
  }

  /** POST /api/exports/{id}/run: Admin, or Contributor on a shared connection. */
  async runNow(caller: Caller, exportId: string, fullSync: boolean, approve = false): Promise<QueueOutcome> {
    requireRole(caller, 'Admin', 'Contributor');
    const record = (await this.exports.get(exportId)).value;
    await this.connections.assertMayWorkWith(caller, record.connectionId);
    if (approve) assertMayApprove(caller, record);
    const by = principalOf(caller);
    return this.start(record, 'manual', by, fullSync, approve ? { approved: { by: by.name, at: new Date().toISOString() } } : {});
  }

  /** POST /api/runs/{id}/approve (held-runs.ts). */
  approve(caller: Caller, runId: string): Promise<RunRecord> {
    return approveHeld(this.heldRunDeps, caller, runId);
  }

  /** POST /api/runs/{id}/dismiss (held-runs.ts). */
  dismiss(caller: Caller, runId: string): Promise<RunRecord> {
    return dismissHeld(this.heldRunDeps, caller, runId);
  }

  private get heldRunDeps(): HeldRunDeps {
    return {
      runs: this.runs,
      exports: this.exports,
      state: this.state,
      connections: this.connections,
      enqueue: (runId) => this.enqueue(runId),
      finishIfUnchanged: (stored, status, errors) => this.finishIfUnchanged(stored, status, errors),
    };
  }

  /** POST /api/exports/run-all: every export whose schedule is on. */
  async runAll(caller: Caller): Promise<{
    queued: { exportId: string; runId: string }[];
    skipped: { exportId: string; reason: string; activeRunId?: string }[];
  }> {
    requireRole(caller, 'Admin', 'Contributor');
    const queued: { exportId: string; runId: string }[] = [];
    const skipped: { exportId: string; reason: string; activeRunId?: string }[] = [];
    for (const { value: record } of await this.exports.list()) {
      if (!record.schedule.enabled || record.status !== 'active') continue;
      try {
        await this.connections.assertMayWorkWith(caller, record.connectionId);
        const outcome = await this.start(record, 'run-all', principalOf(caller));
        if ('queued' in outcome) queued.push({ exportId: record.id, runId: outcome.queued.id });
        else skipped.push({ exportId: record.id, reason: 'a run is already going', activeRunId: outcome.active.id });
      } catch (e) {
        if (!(e instanceof AppError)) throw e;
        skipped.push({ exportId: record.id, reason: e.message });
      }
    }
    return { queued, skipped };
  }
}

export const activeRunConflict = (active: RunRecord) =>
  conflict(`A run of this export is already ${active.status}`, {
    activeRun: { id: active.id, status: active.status, location: `/api/runs/${active.id}` },
  });
