// Executes one queued run (the exportWorker function's job): takes the export's lease, resolves the
// connection's key, runs the engine with live progress on the run row, and records the outcome.
// Time-boxed: it checkpoints and re-queues itself before the plan's function timeout.
import type { BlobServiceClient } from '@azure/storage-blob';
import { BrazeClient } from '../braze/client';
import { RequestBudget } from '../braze/request-budget';
import { definitionFingerprint, RunAborted, runExport, StateTakenOver, SyncStateStore } from '../engine';
import { AppError } from '../errors';
import type { SecretStore } from '../secrets';
import { SnapshotUnavailable } from '../snapshot/locate';
import { CONTAINERS } from '../store/clients';
import type { ConnectionsRepo } from '../store/connections';
import type { ExportStateRepo } from '../store/export-state';
import { CLEANING_UP, type ExportsRepo } from '../store/exports';
import { FINISHED, type RunRecord, type RunsRepo } from '../store/runs';
import { unchangedSinceLastRun } from './already-exported';
import { holdRun, RunGuard } from './guard';
import type { Attempt, Finish, Log, Ready } from './attempt';
import { CleanupAttempts } from './cleanup-attempt';
import { VerifyAttempts, type VerifyDeps } from './verify-attempt';
import { verifyAfterRun } from '../verify/after-run';
import { acquireLease } from './leases';
import { RateLimitTurns } from './limit-waiters';
import { AttemptLimits } from './attempt-limits';
import { waitForTheHour } from './hourly-wait';
import { writeRejectedReport } from './rejected-report';
import { pinnedSnapshot, runFolder } from './pinned-snapshot';
import { RunWriter } from './run-writer';
import type { ExportsService } from '../exports/service';
import type { RunsService } from './service';
import { runEndedLine } from './run-log';
import { connectionDuration } from '../preview/duration-estimate';

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

  private readonly guard: RunGuard;

  constructor(private readonly deps: WorkerDeps) {
    this.guard = new RunGuard(deps);
    this.limits = new RateLimitTurns(this.leases, (runId, delaySeconds) => deps.runsService.enqueue(runId, delaySeconds));
    this.cleanups = new CleanupAttempts(deps.exportsService, this.finish, deps.timeBudgetMs);
    this.verifies = new VerifyAttempts({ ...deps, timing: deps.verifyTiming }, this.finish);
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
      else await this.exportAttempt(attempt, ready);
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

  /** An export run's attempt: the engine over the pinned snapshot, then the outcome. */
  private async exportAttempt(attempt: Attempt, ready: Ready): Promise<void> {
    const { deps } = this;
    const { writer, log } = attempt;
    const snapshot = await pinnedSnapshot(deps, attempt.run, ready.exportRecord.source, ready.exportRecord.segments);
    attempt.run = { ...attempt.run, snapshot: { id: snapshot.id, folder: snapshot.folder, modifiedTime: snapshot.modifiedTime } };
    const definition = definitionFingerprint(ready.exportRecord, ready.connection.baseUrl);
    const shortcut = !attempt.run.fullSync && !attempt.run.repairOf;
    if (shortcut && (await this.alreadyExported(writer, attempt.run, snapshot.id, definition, log))) return;
    // Weighed before anything is sent (not on continuations). An approval covers what was held: the
    // same snapshot under the same settings; anything else is weighed afresh.
    const { approved, held: wasHeld, buckets } = attempt.run;
    const approvedAsHeld = !!approved && (!wasHeld || (wasHeld.snapshotId === snapshot.id && wasHeld.definition === definition));
    if (!approvedAsHeld && !buckets) {
      const held = await this.guard.evaluate(ready.exportRecord, ready.connection.baseUrl, snapshot, {
        fullSync: attempt.run.fullSync,
        shouldStop: ready.shouldStop,
        deadline: attempt.started + deps.timeBudgetMs / 2,
      });
      if (held) {
        // How long approving it would take to send, at the connection's limits as they stand now
        // (this attempt's own reservation given back first: it sends nothing).
        await attempt.limits?.cap?.release().catch(() => undefined);
        const estimate = await connectionDuration(deps.connections.limits, ready.connection, held.requests).catch(() => null);
        return holdRun(attempt, { ...held, ...(estimate ? { estimate: estimate.text } : {}) });
      }
    }
    // Braze's refusals recorded by earlier attempts (their buckets are done; this attempt skips them).
    const earlierRefusals = attempt.run.bucketCounts?.rejected ?? 0;
    const resumed = attempt.run;
    const result = await runExport({
      definition: ready.exportRecord,
      snapshot,
      ciBlobs: deps.ciBlobs,
      state: ready.state,
      braze: ready.braze,
      fullSync: resumed.fullSync,
      resumeFrom:
        resumed.buckets && resumed.bucketCounts && resumed.requests
          ? {
              buckets: resumed.buckets,
              bucketCounts: resumed.bucketCounts,
              requests: resumed.requests,
              omittedAttributes: resumed.omittedAttributes ?? {},
            }
          : undefined,
      onProgress: async (p) => {
        attempt.run = { ...attempt.run, ...p, heartbeatAt: new Date().toISOString() };
        await writer.write(attempt.run);
      },
      shouldYield: () => Date.now() - attempt.started > deps.timeBudgetMs,
      shouldStop: ready.shouldStop,
      beforeCheckpoint: ready.beforeCheckpoint,
      beforeBucket: attempt.limits?.cap ? (requests) => attempt.limits!.cap!.reserveFor(requests) : undefined,
      // An attempt that was held sent nothing: the approved one after it is the first to send. Under an
      // hourly cap nothing is sent early: a run stopped at the cap while reading could not go on next hour.
      firstAttempt: resumed.attempts - (resumed.heldAttempts ?? 0) === 1 && !attempt.limits?.cap,
      timeBudgetMs: deps.timeBudgetMs - (Date.now() - attempt.started),
      bucketTargetBytes: deps.bucketTargetBytes,
      earlyCheckpointMs: deps.earlyCheckpointMs,
      runId: resumed.id,
    });
    if (writer.takenOver || attempt.exportLease.lost) throw new StateTakenOver('the run was taken over while it ran');
    const cappedNotSent = (resumed.cappedNotSent ?? 0) + ready.braze.notSentCapped;
    attempt.run = { ...attempt.run, ...result.progress, ...(cappedNotSent > 0 ? { cappedNotSent } : {}) };
    // Braze's refusals in buckets earlier attempts finished stay in the report beside this attempt's rows.
    if (result.rejectedRowsTotal > 0 || (earlierRefusals > 0 && attempt.run.rejectedReport)) {
      attempt.run.rejectedReport = await writeRejectedReport(
        deps.appBlobs.getContainerClient(CONTAINERS.reports),
        `${runFolder(attempt.run.id)}/rejected.csv`,
        result,
        earlierRefusals,
      );
    }
    await this.exportOutcome(attempt, result, { snapshotId: snapshot.id, definition });
  }

  /** How an export run's attempt ends: cancelled, continued (time box, or the rate limit lost), or finished. */
  private async exportOutcome(
    attempt: Attempt,
    result: { complete: boolean; stopped: boolean },
    exported: { snapshotId: string; definition: string },
  ): Promise<void> {
    const { writer, log } = attempt;
    let run = attempt.run;
    const limitLost = !!attempt.limitLease?.lost && !writer.cancelRequested;
    const capped = !!attempt.limits?.cap?.reached && !writer.cancelRequested;
    // Stopped by a cancel, or cancelled while its last batches waited for the budget (they were not sent).
    if (!limitLost && !capped && (result.stopped || (writer.cancelRequested && (run.counts!.failed > 0 || !result.complete)))) {
      const by = writer.run.cancelRequested?.by ?? 'a user';
      const reason = `Cancelled by ${by}: what Braze took so far is recorded; the next run sends the rest`;
      return this.finish(writer, run, 'cancelled', [reason], null, log);
    }
    if (!result.complete && capped) return waitForTheHour(attempt, attempt.limits!.cap!, true);
    if (!result.complete) {
      run = attempt.run = { ...run, heartbeatAt: new Date().toISOString(), continuations: (run.continuations ?? 0) + 1 };
      await writer.write(run);
      attempt.requeueIn = 0;
      const why = limitLost ? "another run took the Braze connection's rate limit" : 'time box reached';
      return log(
        `run ${run.id} export ${run.exportId}: ${why} after ${run.buckets?.done.length}/${run.buckets?.total} buckets; continuation queued`,
      );
    }
    const status = run.counts!.failed > 0 || run.counts!.removalsFailed > 0 ? 'partially_succeeded' : 'succeeded';
    const errors =
      limitLost && run.counts!.failed > 0
        ? [
            "Another run took the Braze connection's rate limit while this one sent: the profiles not sent count as failed; the next run sends them",
          ]
        : (run.cappedNotSent ?? 0) > 0 && run.counts!.failed > 0
          ? [
              "The connection's hourly request cap stopped this run mid-way: the profiles not sent then count as failed; the next run sends them",
            ]
          : [];
    await this.finish(writer, run, status, errors, exported, log);
  }

  /**
   * The same snapshot (by content: model.json and every partition's ETag) with the same settings was
   * fully exported by the last run: the diff is empty by construction, so nothing is read or sent.
   */
  private async alreadyExported(writer: RunWriter, run: RunRecord, snapshotId: string, definition: string, log: Log) {
    const done = await unchangedSinceLastRun(this.deps, run, snapshotId, definition);
    if (done) await this.finish(writer, done, 'succeeded', [], { snapshotId, definition }, log);
    return done !== null;
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
