// Executes one queued run (the exportWorker function's job): takes the export's lease, resolves the
// connection's key, marks the run running with a heartbeat, and hands the attempt to its kind
// (export-attempt.ts, cleanup-attempt.ts, verify-attempt.ts), which records the outcome. Attempts are
// time-boxed: they checkpoint and re-queue themselves before the plan's function timeout.
import type { BlobServiceClient } from '@azure/storage-blob';
import { setTimeout as delay } from 'node:timers/promises';
import { BrazeClient } from '../braze/client';
import { RequestBudget } from '../braze/request-budget';
import { RunAborted, StateTakenOver, SyncStateStore } from '../engine';
import { AppError } from '../errors';
import type { SecretStore } from '../secrets';
import { SnapshotUnavailable } from '../snapshot/locate';
import { CONTAINERS } from '../store/clients';
import type { ConnectionsRepo } from '../store/connections';
import type { ExportStateRepo } from '../store/export-state';
import { CLEANING_UP, type ExportsRepo } from '../store/exports';
import { FINISHED, type RunRecord, type RunsRepo } from '../store/runs';
import type { Attempt, Finish, Log, Ready } from './attempt';
import { CleanupAttempts } from './cleanup-attempt';
import { ExportAttempts } from './export-attempt';
import { VerifyAttempts, type VerifyDeps } from './verify-attempt';
import { verifyAfterRun } from '../verify/after-run';
import { acquireLease } from './leases';
import { RateLimitTurns } from './limit-waiters';
import { AttemptLimits } from './attempt-limits';
import { RunWriter } from './run-writer';
import type { ExportsService } from '../exports/service';
import type { RunsService } from './service';
import { runEndedLine } from './run-log';

export type { Log } from './attempt';
export { runFolder } from './pinned-snapshot';
export { rateLimitLeaseName, LIMIT_BUSY_RETRY_SECONDS } from './limit-waiters';

export interface WorkerDeps {
  runs: RunsRepo;
  exports: ExportsRepo;
  state: ExportStateRepo;
  connections: ConnectionsRepo;
  secrets: SecretStore;
  appBlobs: BlobServiceClient;
  ciBlobs: BlobServiceClient;
  runsService: RunsService;
  /** Deletes or detaches an export once its cleanup run has succeeded. */
  exportsService: Pick<ExportsService, 'completeCleanup'>;
  timeBudgetMs: number;
  earlyCheckpointMs?: number;
  bucketTargetBytes?: number;
  /** Transport tuning for tests (fast backoff); production uses the client's defaults. */
  brazeOptions?: { backoffBaseMs?: number; timeoutMs?: number; maxAttempts?: number };
  /** Verification runs: Blob services at other accounts (Braze's export container), and their polling. */
  blobsAt: VerifyDeps['blobsAt'];
  verifyTiming?: VerifyDeps['timing'];
  /** How often a running attempt writes its sign of life (HEARTBEAT_MS; tests: shorter). */
  heartbeatMs?: number;
}

/** Attempts that may end other than at the time box (crash, kill, error) before the run is given up. */
export const MAX_TROUBLED_ATTEMPTS = 5;
const LEASE_BUSY_RETRY_SECONDS = 5;
/** The worker's sign of life (and how soon it sees a cancel request) while nothing else is written. */
const HEARTBEAT_MS = 5000;

export class RunWorker {
  private readonly limits: RateLimitTurns;
  private readonly cleanups: CleanupAttempts;
  private readonly verifies: VerifyAttempts;
  private readonly exportAttempts: ExportAttempts;

  constructor(private readonly deps: WorkerDeps) {
    this.limits = new RateLimitTurns(this.leases, (runId, delaySeconds) => deps.runsService.enqueue(runId, delaySeconds));
    this.cleanups = new CleanupAttempts(deps.exportsService, this.finish, deps.timeBudgetMs);
    this.verifies = new VerifyAttempts({ ...deps, timing: deps.verifyTiming }, this.finish);
    this.exportAttempts = new ExportAttempts(deps, this.finish);
  }

  async execute(runId: string, log: Log): Promise<void> {
    const { deps } = this;
    const first = await deps.runs.get(runId).catch(() => null);
    if (!first) return log(`run ${runId}: not found (deleted?); message dropped`);
    if (FINISHED.includes(first.value.status)) return this.afterFinished(first.value, log);

    const exportLease = await acquireLease(this.leases, first.value.exportId);
    if (!exportLease) {
      log(`run ${runId}: export ${first.value.exportId} is leased by another worker; retrying in ${LEASE_BUSY_RETRY_SECONDS} s`);
      await deps.runsService.enqueue(runId, LEASE_BUSY_RETRY_SECONDS);
      return;
    }
    // Read again under the lease: a duplicate message for a run finished meanwhile is dropped here.
    const stored = await deps.runs.get(runId);
    const attempt: Attempt = {
      writer: new RunWriter(deps.runs, stored.value, stored.etag),
      run: stored.value,
      log,
      started: Date.now(),
      exportLease,
      limitLease: null,
      requeueIn: null,
    };
    try {
      await this.attempt(attempt);
    } finally {
      clearInterval(attempt.heartbeat);
      attempt.braze?.close();
      await attempt.limits?.close();
      // The next run on the limit takes the window as used at an even pace before it: a burst
      // just sent must leave it first (at most a window's wait; a lease lost has a holder already).
      const held = attempt.limitLease && !attempt.limitLease.lost;
      const burstLeaves = held && attempt.braze ? attempt.braze.msUntilEven() : 0;
      if (burstLeaves > 0) await delay(burstLeaves);
      await attempt.limitLease?.release();
      await exportLease.release();
      // Runs waiting for this limit start now, not at their next look.
      if (attempt.limitLease) await this.limits.wake(attempt.limitLease.name, log);
    }
    // Queued only once the leases are free, so the continuation (or the retry) can start at once.
    if (attempt.requeueIn !== null) await deps.runsService.enqueue(attempt.run.id, attempt.requeueIn);
  }

  /**
   * A message for a finished run changes nothing, except that a succeeded cleanup whose export is
   * still there (its last step failed, or the worker was killed before it) is finished now.
   */
  private async afterFinished(run: RunRecord, log: Log): Promise<void> {
    if (
      run.kind === 'cleanup' &&
      run.status === 'succeeded' &&
      (await this.deps.exportsService.completeCleanup(run.exportId, run.id))
    )
      return log(`run ${run.id}: cleanup succeeded; export ${run.exportId} ${run.then === 'delete' ? 'deleted' : 'detached'}`);
    log(`run ${run.id}: already ${run.status}; duplicate message ignored`);
  }

  private get leases() {
    return this.deps.appBlobs.getContainerClient(CONTAINERS.leases);
  }

  /** The attempt itself, once the export's lease is held: its outcome is written on the run. */
  private async attempt(attempt: Attempt): Promise<void> {
    const { writer, log } = attempt;
    try {
      const ready = await this.begin(attempt);
      if (!ready) return;
      if (attempt.run.kind === 'cleanup') await this.cleanups.run(attempt, ready);
      else if (attempt.run.kind === 'verify') await this.verifies.run(attempt, ready);
      else await this.exportAttempts.run(attempt, ready);
    } catch (e) {
      const run = attempt.run;
      if (e instanceof StateTakenOver) {
        // Another worker owns the run now: write nothing, leave it to them.
        log(`run ${run.id} export ${run.exportId}: stopped, ${e.message}; nothing more written by this worker`);
        return;
      }
      if (e instanceof RunAborted || e instanceof SnapshotUnavailable) {
        await this.finish(writer, run, 'failed', [e.message], null, log);
        return;
      }
      // Unexpected (storage outage…): keep the checkpoint; the queue retries and resumes.
      attempt.run = { ...run, errors: [...run.errors, `attempt ${run.attempts}: ${(e as Error).message}`] };
      await writer.write(attempt.run).catch(() => undefined);
      throw e;
    }
  }

  /** Whether the run may start at all: not finished, not cancelled, not past its attempt cap. */
  private async mayStart(attempt: Attempt): Promise<boolean> {
    const { writer, log, run } = attempt;
    if (FINISHED.includes(run.status) || run.status === 'held') {
      log(`run ${run.id}: already ${run.status}; duplicate message ignored`);
      return false;
    }
    if (writer.cancelRequested) {
      await this.finish(writer, run, 'cancelled', ['Cancelled before it started'], null, log);
      return false;
    }
    const troubled = run.attempts - (run.continuations ?? 0);
    if (troubled < MAX_TROUBLED_ATTEMPTS) return true;
    const last = run.errors.at(-1) ?? 'the worker stopped without a word (killed, out of memory, or scaled in)';
    const reason = `Gave up after ${troubled} attempts that did not finish; the last: ${last}. Fix the cause, then run the export again`;
    await this.finish(writer, run, 'failed', [reason], null, log);
    return false;
  }

  /**
   * Everything before the work: the run may have ended, been cancelled or be past its attempt cap;
   * its export and connection must exist; the connection's rate limit must be free. Then the run is
   * marked running, its heartbeat started and its Braze client made; null = nothing more to do.
   */
  private async begin(attempt: Attempt): Promise<Ready | null> {
    const { deps } = this;
    const { writer, log } = attempt;
    if (!(await this.mayStart(attempt))) return null;
    const exportRecord = (await deps.exports.get(attempt.run.exportId).catch(gone('The export was deleted'))).value;
    if (!exportRecord.connectionId) throw new RunAborted('The export has no connection (detached)');
    if (attempt.run.kind !== 'cleanup' && CLEANING_UP.includes(exportRecord.status))
      throw new RunAborted(`The export is ${exportRecord.status}: its membership is being withdrawn from Braze`);
    const connection = (await deps.connections.get(exportRecord.connectionId).catch(gone("The export's connection was deleted")))
      .value;
    // A verification sends nothing to /users/track: it does not wait for the connection's rate limit.
    if (attempt.run.kind !== 'verify' && !(await this.limits.take(attempt, connection))) return null;
    // The hourly cap is drawn on lazily (the first bucket's reservation, or the first request): a run
    // that sends nothing (already exported, held, nothing to withdraw, a verification) never waits for the hour.
    const capNow = () => deps.connections.get(connection.id).then((c) => c.value.hourlyRequestCap ?? null);
    const limits = (attempt.limits = new AttemptLimits(deps.connections.limits, connection, capNow));
    const apiKey = await deps.secrets.get(connection.apiKey.reference).catch((e: unknown) => {
      throw new RunAborted(
        `Cannot read the connection's Braze API key (${(e as Error).message}); check the Key Vault secret and the app's access to it`,
      );
    });
    const now = new Date().toISOString();
    const run = (attempt.run = {
      ...attempt.run,
      status: 'running',
      startedAt: attempt.run.startedAt ?? now,
      heartbeatAt: now,
      attempts: attempt.run.attempts + 1,
      waitingFor: null,
    });
    await writer.write(run);
    if (writer.takenOver) {
      log(`run ${run.id}: finished by someone else meanwhile; stopping`);
      return null;
    }
    log(`run ${run.id} export ${run.exportId}: started (attempt ${run.attempts}, trigger ${run.trigger})`);
    attempt.heartbeat = setInterval(() => {
      void writer.write({ ...attempt.run, heartbeatAt: new Date().toISOString() }).catch(() => undefined);
      void limits.record().catch(() => undefined);
    }, this.deps.heartbeatMs ?? HEARTBEAT_MS);
    const { exportLease, limitLease } = attempt;
    // A lost rate-limit lease stops sending as a lost export lease does: another run draws on the limit now.
    // So does the hourly cap, once reached: the run goes on in the next hour.
    const shouldStop = () =>
      writer.cancelRequested || writer.takenOver || exportLease.lost || !!limitLease?.lost || !!limits.cap?.exhausted;
    attempt.braze = new BrazeClient({
      baseUrl: connection.baseUrl,
      apiKey,
      budget: new RequestBudget({ requestsPerWindow: connection.requestBudget }),
      shouldStop,
      hourlyCap: limits.cap ?? undefined,
      ...deps.brazeOptions,
    });
    limits.watch(attempt.braze);
    return {
      exportRecord,
      connection,
      braze: attempt.braze,
      apiKey,
      state: new SyncStateStore(deps.appBlobs.getContainerClient(CONTAINERS.state), run.exportId),
      shouldStop,
      beforeCheckpoint: () => exportLease.assertHeld(),
    };
  }

  private readonly finish: Finish = async (writer, run, status, errors, exported, log) => {
    const c = (
      await this.deps.runsService.finish(run, status, errors, exported, (done) =>
        writer.write(done).then(() => !writer.takenOver),
      )
    ).counts;
    log(runEndedLine({ runId: run.id, exportId: run.exportId, status, by: 'worker', counts: c, errors }));
    if (status === 'succeeded' && exported && !writer.takenOver) await verifyAfterRun(this.deps, run, log);
  };
}

/** A 404 while starting means the run has nothing left to do: abort it instead of retrying forever. */
const gone = (message: string) => (e: unknown) => {
  throw e instanceof AppError && e.status === 404 ? new RunAborted(message) : e;
};
