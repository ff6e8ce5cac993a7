// Executes one queued run (the exportWorker function's job): takes the export's lease, resolves the
// connection's key, runs the engine with live progress on the run row, and records the outcome.
// Time-boxed: it checkpoints and re-queues itself before the plan's function timeout.
import type { BlobServiceClient } from '@azure/storage-blob';
import { BrazeClient } from '../braze/client';
import { RequestBudget } from '../braze/request-budget';
import {
  definitionFingerprint,
  RunAborted,
  runExport,
  StateTakenOver,
  SyncStateStore,
  withdrawAll,
  type WithdrawCounts,
} from '../engine';
import { AppError } from '../errors';
import type { SecretStore } from '../secrets';
import { locateSnapshot, SnapshotUnavailable, type Snapshot } from '../snapshot/locate';
import { CONTAINERS } from '../store/clients';
import type { ConnectionRecord, ConnectionsRepo } from '../store/connections';
import type { ExportStateRepo } from '../store/export-state';
import type { ExportRecord, ExportsRepo } from '../store/exports';
import { FINISHED, splitRunId, type HeldFigures, type RunRecord, type RunsRepo } from '../store/runs';
import { RunGuard } from './guard';
import { exportVerdict } from './already-exported';
import { acquireLease, type HeldLease } from './leases';
import { writeRejectedReport } from './rejected-report';
import { RunWriter } from './run-writer';
import type { ExportsService } from '../exports/service';
import type { RunsService } from './service';
import { statusOf } from '../store/table-errors';
import { runEndedLine } from './run-log';

export type Log = (message: string) => void;

export interface WorkerDeps {
  runs: RunsRepo;
  exports: ExportsRepo;
  state: ExportStateRepo;
  connections: ConnectionsRepo;
  secrets: SecretStore;
  appBlobs: BlobServiceClient;
  ciBlobs: BlobServiceClient;
  runsService: RunsService;
  /** Deletes or detaches an export once its cleanup run is done. */
  exportsService: Pick<ExportsService, 'deleteAfterCleanup' | 'detachAfterCleanup'>;
  timeBudgetMs: number;
  earlyCheckpointMs?: number;
  bucketTargetBytes?: number;
  /** Transport tuning for tests (fast backoff); production uses the client's defaults. */
  brazeOptions?: { backoffBaseMs?: number; timeoutMs?: number; maxAttempts?: number };
}

/** Attempts that may end other than at the time box (crash, kill, error) before the run is given up. */
export const MAX_TROUBLED_ATTEMPTS = 5;
const LEASE_BUSY_RETRY_SECONDS = 5;
/** A run waiting for another run on the same Braze rate limit looks again this often. */
const LIMIT_BUSY_RETRY_SECONDS = 10;
/** The worker's sign of life (and how soon it sees a cancel request) while nothing else is written. */
const HEARTBEAT_MS = 5000;

/** Where a run's files live: the rejected-rows report and the snapshot it is pinned to. */
export const runFolder = (runId: string) => {
  const ids = splitRunId(runId)!;
  return `${ids.exportId}/${ids.rowKey}`;
};

/**
 * The lease shared by every run that draws on one Braze rate limit: the connection's own, or the
 * group an Admin put several connections in (newer Braze contracts share the limit across a
 * company's workspaces). One run at a time per limit, each at its connection's budget: the budget
 * is the bottleneck, so runs one after another finish as soon as they would sharing it, and the
 * limit holds across instances with nothing more than a lease.
 */
export const rateLimitLeaseName = (connection: { id: string; rateLimitGroup?: string | null }) =>
  connection.rateLimitGroup
    ? `limit-group-${encodeURIComponent(connection.rateLimitGroup.toLowerCase())}`
    : `limit-connection-${connection.id}`;

/** One attempt of a run, as the worker goes through it. */
interface Attempt {
  writer: RunWriter;
  /** The run as this worker last wrote it (or is about to). */
  run: RunRecord;
  log: Log;
  started: number;
  exportLease: HeldLease;
  limitLease: HeldLease | null;
  heartbeat?: NodeJS.Timeout;
  braze?: BrazeClient;
  /** Queue the run again once the leases are free, after this many seconds. */
  requeueIn: number | null;
}

/** What an attempt works with once it may start. */
interface Ready {
  exportRecord: ExportRecord;
  connection: ConnectionRecord;
  braze: BrazeClient;
  state: SyncStateStore;
  shouldStop: () => boolean;
  beforeCheckpoint: () => Promise<void>;
}

export class RunWorker {
  private runGuard: RunGuard | undefined;

  constructor(private readonly deps: WorkerDeps) {}

  async execute(runId: string, log: Log): Promise<void> {
    const { deps } = this;
    const first = await deps.runs.get(runId).catch(() => null);
    if (!first) return log(`run ${runId}: not found (deleted?); message dropped`);
    if (FINISHED.includes(first.value.status))
      return log(`run ${runId}: already ${first.value.status}; duplicate message ignored`);

    const exportLease = await acquireLease(this.leases, first.value.exportId);
    if (!exportLease) {
      log(`run ${runId}: export ${first.value.exportId} is leased by another worker; retrying in ${LEASE_BUSY_RETRY_SECONDS} s`);
      await deps.runsService.enqueue(runId, LEASE_BUSY_RETRY_SECONDS);
      return;
    }
    // Read again under the lease: a duplicate message for a run finished meanwhile is dropped here.
    const stored = await deps.runs.get(runId);
    const writer = new RunWriter(deps.runs, stored.value, stored.etag);
    const attempt: Attempt = {
      writer,
      run: stored.value,
      log,
      started: Date.now(),
      exportLease,
      limitLease: null,
      requeueIn: null,
    };
    try {
      const ready = await this.begin(attempt);
      if (!ready) return;
      if (attempt.run.kind === 'cleanup') await this.cleanupAttempt(attempt, ready);
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
    } finally {
      clearInterval(attempt.heartbeat);
      attempt.braze?.close();
      await attempt.limitLease?.release();
      await exportLease.release();
    }
    // Queued only once the leases are free, so the continuation (or the retry) can start at once.
    if (attempt.requeueIn !== null) await deps.runsService.enqueue(attempt.run.id, attempt.requeueIn);
  }

  private get leases() {
    return this.deps.appBlobs.getContainerClient(CONTAINERS.leases);
  }

  /**
   * Everything before the work: the run may have ended, been cancelled or be past its attempt cap;
   * its export and connection must exist; the connection's rate limit must be free. Then the run is
   * marked running, its heartbeat started and its Braze client made; null = nothing more to do.
   */
  private async begin(a: Attempt): Promise<Ready | null> {
    const { deps } = this;
    const { writer, log } = a;
    let run = a.run;
    if (FINISHED.includes(run.status) || run.status === 'held') {
      log(`run ${run.id}: already ${run.status}; duplicate message ignored`);
      return null;
    }
    if (writer.cancelRequested) {
      await this.finish(writer, run, 'cancelled', ['Cancelled before it started'], null, log);
      return null;
    }
    const troubled = run.attempts - (run.continuations ?? 0);
    if (troubled >= MAX_TROUBLED_ATTEMPTS) {
      const last = run.errors.at(-1) ?? 'the worker stopped without a word (killed, out of memory, or scaled in)';
      await this.finish(
        writer,
        run,
        'failed',
        [`Gave up after ${troubled} attempts that did not finish; the last: ${last}. Fix the cause, then run the export again`],
        null,
        log,
      );
      return null;
    }
    const exportRecord = (await deps.exports.get(run.exportId).catch(gone('The export was deleted'))).value;
    if (!exportRecord.connectionId) throw new RunAborted('The export has no connection (detached)');
    const connection = (await deps.connections.get(exportRecord.connectionId).catch(gone("The export's connection was deleted")))
      .value;
    a.limitLease = await acquireLease(this.leases, rateLimitLeaseName(connection));
    if (!a.limitLease) {
      a.run = {
        ...run,
        waitingFor: "another run on the same Braze connection's rate limit",
        heartbeatAt: new Date().toISOString(),
      };
      await writer.write(a.run);
      a.requeueIn = LIMIT_BUSY_RETRY_SECONDS;
      return null;
    }
    let apiKey: string;
    try {
      apiKey = await deps.secrets.get(connection.apiKey.reference);
    } catch (e) {
      throw new RunAborted(
        `Cannot read the connection's Braze API key (${(e as Error).message}); check the Key Vault secret and the app's access to it`,
      );
    }
    const now = new Date().toISOString();
    run = a.run = {
      ...run,
      status: 'running',
      startedAt: run.startedAt ?? now,
      heartbeatAt: now,
      attempts: run.attempts + 1,
      waitingFor: null,
    };
    await writer.write(run);
    if (writer.takenOver) {
      log(`run ${run.id}: finished by someone else meanwhile; stopping`);
      return null;
    }
    log(`run ${run.id} export ${run.exportId}: started (attempt ${run.attempts}, trigger ${run.trigger})`);
    a.heartbeat = setInterval(
      () => void writer.write({ ...a.run, heartbeatAt: new Date().toISOString() }).catch(() => undefined),
      HEARTBEAT_MS,
    );
    const lease = a.exportLease;
    const shouldStop = () => writer.cancelRequested || writer.takenOver || lease.lost;
    a.braze = new BrazeClient({
      baseUrl: connection.baseUrl,
      apiKey,
      budget: new RequestBudget({ requestsPerWindow: connection.requestBudget }),
      shouldStop,
      ...deps.brazeOptions,
    });
    return {
      exportRecord,
      connection,
      braze: a.braze,
      state: new SyncStateStore(deps.appBlobs.getContainerClient(CONTAINERS.state), run.exportId),
      shouldStop,
      beforeCheckpoint: () => lease.assertHeld(),
    };
  }

  /** A cleanup run: withdraw the membership everywhere the state says, then delete or detach. */
  private async cleanupAttempt(a: Attempt, r: Ready): Promise<void> {
    const asCounts = (c: WithdrawCounts) => ({ rowsRead: 0, unchanged: 0, sent: 0, failed: 0, newProfiles: 0, ...c });
    const counts = await withdrawAll({
      definition: r.exportRecord,
      state: r.state,
      braze: r.braze,
      shouldStop: r.shouldStop,
      beforeCheckpoint: r.beforeCheckpoint,
      onProgress: async (c) => {
        a.run = { ...a.run, counts: asCounts(c), heartbeatAt: new Date().toISOString() };
        await a.writer.write(a.run);
      },
    });
    if (a.writer.takenOver || a.exportLease.lost) throw new StateTakenOver('the run was taken over while it ran');
    a.run = { ...a.run, counts: asCounts(counts), requests: r.braze.requests };
    await this.finishCleanup(a.writer, a.run, counts.removalsFailed, a.log);
  }

  /** An export run's attempt: the engine over the pinned snapshot, then the outcome. */
  private async exportAttempt(a: Attempt, r: Ready): Promise<void> {
    const { deps } = this;
    const { writer, log } = a;
    const snapshot = await this.pinnedSnapshot(a.run, r.exportRecord.source, r.exportRecord.segments);
    a.run = { ...a.run, snapshot: { id: snapshot.id, folder: snapshot.folder, modifiedTime: snapshot.modifiedTime } };
    const definition = definitionFingerprint(r.exportRecord, r.connection.baseUrl);
    if (!a.run.fullSync && (await this.alreadyExported(writer, a.run, snapshot.id, definition, log))) return;
    // Weighed before anything is sent: once per run (not on continuations), unless approved.
    if (!a.run.approved && !a.run.buckets) {
      const held = await this.guard.evaluate(r.exportRecord, r.connection.baseUrl, snapshot, a.run.fullSync);
      if (held) return this.hold(a, held);
    }
    // Braze's refusals recorded by earlier attempts (their buckets are done; this attempt skips them).
    const earlierRefusals = a.run.bucketCounts?.rejected ?? 0;
    const resumed = a.run;
    const result = await runExport({
      definition: r.exportRecord,
      snapshot,
      ciBlobs: deps.ciBlobs,
      state: r.state,
      braze: r.braze,
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
        a.run = { ...a.run, ...p, heartbeatAt: new Date().toISOString() };
        await writer.write(a.run);
      },
      shouldYield: () => Date.now() - a.started > deps.timeBudgetMs,
      shouldStop: r.shouldStop,
      beforeCheckpoint: r.beforeCheckpoint,
      // An attempt that was held sent nothing: the approved one after it is the first to send.
      firstAttempt: resumed.attempts - (resumed.held ? 1 : 0) === 1,
      timeBudgetMs: deps.timeBudgetMs - (Date.now() - a.started),
      bucketTargetBytes: deps.bucketTargetBytes,
      earlyCheckpointMs: deps.earlyCheckpointMs,
      runId: resumed.id,
    });
    if (writer.takenOver || a.exportLease.lost) throw new StateTakenOver('the run was taken over while it ran');
    let run = (a.run = { ...a.run, ...result.progress });
    // Braze's refusals in buckets earlier attempts finished stay in the report beside this attempt's rows.
    if (result.rejectedRowsTotal > 0 || (earlierRefusals > 0 && run.rejectedReport)) {
      run.rejectedReport = await writeRejectedReport(
        deps.appBlobs.getContainerClient(CONTAINERS.reports),
        `${runFolder(run.id)}/rejected.csv`,
        result,
        earlierRefusals,
      );
    }
    // Stopped by a cancel, or cancelled while its last batches waited for the budget (they were not sent).
    if (result.stopped || (writer.cancelRequested && (run.counts!.failed > 0 || !result.complete))) {
      return this.finish(
        writer,
        run,
        'cancelled',
        [
          `Cancelled by ${writer.run.cancelRequested?.by ?? 'a user'}: what Braze took so far is recorded; the next run sends the rest`,
        ],
        null,
        log,
      );
    }
    if (!result.complete) {
      run = a.run = { ...run, heartbeatAt: new Date().toISOString(), continuations: (run.continuations ?? 0) + 1 };
      await writer.write(run);
      a.requeueIn = 0;
      return log(
        `run ${run.id} export ${run.exportId}: time box reached after ${run.buckets?.done.length}/${run.buckets?.total} buckets; continuation queued`,
      );
    }
    await this.finish(
      writer,
      run,
      run.counts!.failed > 0 || run.counts!.removalsFailed > 0 ? 'partially_succeeded' : 'succeeded',
      [],
      { snapshotId: snapshot.id, definition },
      log,
    );
  }

  /**
   * The same snapshot (by content: model.json and every partition's ETag) with the same settings was
   * fully exported by the last run: the diff is empty by construction, so nothing is read or sent.
   */
  private async alreadyExported(
    writer: RunWriter,
    run: RunRecord,
    snapshotId: string,
    definition: string,
    log: Log,
  ): Promise<boolean> {
    const state = (await this.deps.state.get(run.exportId))?.value;
    // Profiles Braze refused last time are worth another try: only a clean run allows the shortcut.
    if (exportVerdict(state, snapshotId, definition) !== 'exported') return false;
    const last = state!.lastRun!;
    const previous = await this.deps.runs.get(last.id).then(
      (r) => r.value,
      () => null,
    );
    if (!previous?.counts) return false;
    const c = previous.counts;
    const done: RunRecord = {
      ...run,
      counts: { ...c, unchanged: c.sent + c.unchanged, sent: 0, removed: 0, failed: 0, removalsFailed: 0, newProfiles: 0 },
      requests: { sent: 0, retried: 0, rateLimited: 0 },
      segments: previous.segments,
      omittedAttributes: previous.omittedAttributes,
      rejectedReport: previous.rejectedReport,
      warnings: [`Snapshot unchanged since run ${previous.id}: nothing was read or sent (use fullSync to resend everything)`],
    };
    await this.finish(writer, done, 'succeeded', [], { snapshotId, definition }, log);
    return true;
  }

  /**
   * A cleanup run withdrew the export's membership: now the export is deleted or detached, as the
   * user asked. If some withdrawals failed (or the run was cancelled) the export stays as it was,
   * so nothing is let go while Braze still holds it; DELETE / detach again retries them.
   */
  private async finishCleanup(writer: RunWriter, run: RunRecord, removalsFailed: number, log: Log): Promise<void> {
    if (writer.cancelRequested)
      return this.finish(
        writer,
        run,
        'cancelled',
        [`Cancelled: the export was not ${run.then === 'delete' ? 'deleted' : 'detached'}`],
        null,
        log,
      );
    if (removalsFailed > 0) {
      return this.finish(
        writer,
        run,
        'partially_succeeded',
        [
          `${removalsFailed} withdrawals could not be delivered; the export was kept. ${run.then === 'delete' ? 'DELETE' : 'Detach'} it again to retry them (or with ?keepBrazeData=true to leave them)`,
        ],
        null,
        log,
      );
    }
    await this.finish(writer, run, 'succeeded', [], null, log);
    if (writer.takenOver) return;
    if (run.then === 'delete') await this.deps.exportsService.deleteAfterCleanup(run.exportId);
    else
      await this.deps.exportsService.detachAfterCleanup(
        run.exportId,
        run.queuedByPrincipal ?? { name: run.queuedBy, objectId: null, tenantId: null },
      );
    log(
      `run ${run.id} export ${run.exportId}: membership withdrawn from Braze; export ${run.then === 'delete' ? 'deleted' : 'detached'}`,
    );
  }

  private async finish(
    writer: RunWriter,
    run: RunRecord,
    status: RunRecord['status'],
    errors: string[],
    exported: { snapshotId: string; definition: string } | null,
    log: Log,
  ): Promise<void> {
    const c = (
      await this.deps.runsService.finish(run, status, errors, exported, (done) =>
        writer.write(done).then(() => !writer.takenOver),
      )
    ).counts;
    log(runEndedLine({ runId: run.id, exportId: run.exportId, status, by: 'worker', counts: c, errors }));
  }

  private get guard(): RunGuard {
    return (this.runGuard ??= new RunGuard(this.deps));
  }

  /**
   * Holds the run: nothing was sent, the export stays claimed (the timer does not queue it again),
   * and the run waits for approve (it then sends exactly this, from the same pinned snapshot) or
   * dismiss. Logged in the shape of a run that ended, so the deployment's alert fires.
   */
  private async hold(a: Attempt, held: HeldFigures): Promise<void> {
    a.run = {
      ...a.run,
      status: 'held',
      held,
      heartbeatAt: new Date().toISOString(),
      // It ended as planned: not an attempt that failed.
      continuations: (a.run.continuations ?? 0) + 1,
    };
    await a.writer.write(a.run);
    a.log(runEndedLine({ runId: a.run.id, exportId: a.run.exportId, status: 'held', by: 'worker', errors: held.reasons }));
  }

  /** The first attempt locates the snapshot and pins it; later attempts read the same one. */
  private async pinnedSnapshot(
    run: RunRecord,
    source: { container: string; folder: string },
    segments: string[],
  ): Promise<Snapshot> {
    const blob = this.deps.appBlobs
      .getContainerClient(CONTAINERS.reports)
      .getBlockBlobClient(`${runFolder(run.id)}/snapshot.json`);
    if (run.attempts > 1) {
      try {
        return JSON.parse((await blob.downloadToBuffer()).toString('utf8')) as Snapshot;
      } catch (e) {
        if (statusOf(e) !== 404) throw e;
      }
    }
    const snapshot = await locateSnapshot(this.deps.ciBlobs, source, segments);
    const text = JSON.stringify(snapshot);
    await blob.upload(text, Buffer.byteLength(text), { blobHTTPHeaders: { blobContentType: 'application/json' } });
    return snapshot;
  }
}

/** A 404 while starting means the run has nothing left to do: abort it instead of retrying forever. */
const gone = (message: string) => (e: unknown) => {
  throw e instanceof AppError && e.status === 404 ? new RunAborted(message) : e;
};
