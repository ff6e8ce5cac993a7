// An export run's attempt (kind "export"; the worker hands it the attempt once it may start): the
// engine over the pinned snapshot, weighed first by the guard, then its outcome: cancelled,
// continued (time box, the rate limit lost, the hourly cap reached) or finished.
import type { BlobServiceClient } from '@azure/storage-blob';
import { definitionFingerprint, runExport, type EngineResult, type Manifest } from '../engine';
import { connectionDuration, connectionPace } from '../preview/duration-estimate';
import { CONTAINERS } from '../store/clients';
import type { ConnectionsRepo } from '../store/connections';
import type { ExportStateRepo } from '../store/export-state';
import type { HeldFigures, RunRecord, RunsRepo } from '../store/runs';
import { notTakenMessage } from './not-taken';
import { unchangedSinceLastRun } from './already-exported';
import { assertStillOurs, type Attempt, type Finish, type Ready } from './attempt';
import { holdRun, RunGuard, type GuardPlan } from './guard';
import { waitForTheHour } from './hourly-wait';
import { pinnedSnapshot, runFolder } from './pinned-snapshot';
import { writeRejectedReport } from './rejected-report';

/** What an export attempt reads and writes besides the attempt itself. */
export interface ExportAttemptDeps {
  appBlobs: BlobServiceClient;
  ciBlobs: BlobServiceClient;
  state: ExportStateRepo;
  runs: RunsRepo;
  connections: ConnectionsRepo;
  timeBudgetMs: number;
  earlyCheckpointMs?: number;
  bucketTargetBytes?: number;
}

export class ExportAttempts {
  private readonly guard: RunGuard;

  constructor(
    private readonly deps: ExportAttemptDeps,
    private readonly finish: Finish,
  ) {
    this.guard = new RunGuard(deps);
  }

  /** An export run's attempt: the engine over the pinned snapshot, then the outcome. */
  async run(attempt: Attempt, ready: Ready): Promise<void> {
    const { deps } = this;
    const { writer } = attempt;
    const firstAttempt = firstToSend(attempt);
    const pace = this.paceOf(ready, firstAttempt);
    const { snapshot, pinned } = await pinnedSnapshot(deps, attempt.run, ready.exportRecord.source, ready.exportRecord.segments);
    pinned.catch(() => undefined); // awaited before the snapshot is weighed or sent
    const manifestRead = ready.state.readManifest(); // once, for the guard and the engine (nothing writes it between)
    manifestRead.catch(() => undefined); // awaited by both, unless the snapshot is in Braze already
    attempt.run = { ...attempt.run, snapshot: { id: snapshot.id, folder: snapshot.folder, modifiedTime: snapshot.modifiedTime } };
    const definition = definitionFingerprint(ready.exportRecord, ready.connection.baseUrl);
    const plan = await this.planOrShortcut(attempt, ready, snapshot.id, definition, { pinned, manifestRead });
    if (plan === null) return;
    await pinned; // a continuation must find the snapshot this attempt weighs and sends
    // Weighed before anything is sent, not on continuations (a run weighed as it goes records no
    // progress until it is let go: a worker that dies while weighing leaves it to be weighed again).
    const guardRun = {
      fullSync: attempt.run.fullSync,
      shouldStop: ready.shouldStop,
      deadline: attempt.started + deps.timeBudgetMs / 2,
      pace,
    };
    if (plan === 'dry-run') {
      const held = await this.guard.dryRun(ready.exportRecord, ready.connection.baseUrl, snapshot, guardRun);
      if (held) return this.hold(attempt, ready, held);
    }
    const weighing =
      plan === 'as-it-goes'
        ? this.guard.asItGoes(ready.exportRecord, ready.connection.baseUrl, snapshot, guardRun.deadline)
        : undefined;
    // Braze's refusals recorded by earlier attempts (their buckets are done; this attempt skips them).
    const earlierRefusals = attempt.run.bucketCounts?.rejected ?? 0;
    const resumed = attempt.run;
    // A worker that lost its lease meanwhile (a long dry run) must not open the state with what it read before.
    assertStillOurs(attempt, 'the run was taken over while it was weighed');
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
              failureReasons: resumed.failureReasons ?? [],
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
      firstAttempt,
      pace: firstAttempt ? await pace() : undefined,
      timeBudgetMs: deps.timeBudgetMs - (Date.now() - attempt.started),
      bucketTargetBytes: deps.bucketTargetBytes,
      earlyCheckpointMs: deps.earlyCheckpointMs,
      runId: resumed.id,
      weigh: weighing,
      manifestRead,
    });
    assertStillOurs(attempt, 'the run was taken over while it ran');
    const held = result.held ? weighing?.verdict() : null;
    if (held) return this.hold(attempt, ready, held);
    const cappedNotSent = (resumed.cappedNotSent ?? 0) + ready.braze.notSentCapped;
    attempt.run = { ...attempt.run, ...result.progress, ...(cappedNotSent > 0 ? { cappedNotSent } : {}) };
    await this.writeReport(attempt, result, earlierRefusals);
    await this.outcome(attempt, result, { snapshotId: snapshot.id, definition });
  }

  /** The rejected-rows report: Braze's refusals in buckets earlier attempts finished stay in it beside this attempt's rows. */
  private async writeReport(attempt: Attempt, result: EngineResult, earlierRefusals: number): Promise<void> {
    if (result.rejectedRowsTotal === 0 && !(earlierRefusals > 0 && attempt.run.rejectedReport)) return;
    attempt.run.rejectedReport = await writeRejectedReport(
      this.deps.appBlobs.getContainerClient(CONTAINERS.reports),
      `${runFolder(attempt.run.id)}/rejected.csv`,
      result,
      earlierRefusals,
    );
  }

  /**
   * The pace Braze will take this run's requests at: read once, and only where it chooses the path
   * (a dry run, or a first attempt: a continuation never sends early). A first attempt's (the
   * connection's limits as last recorded, a table read) is read at once, beside the snapshot's
   * reads: storage round trips before the first row add up.
   */
  private paceOf(ready: Ready, firstAttempt: boolean): () => Promise<number> {
    let paceRead: Promise<number> | undefined;
    const pace = () => (paceRead ??= connectionPace(this.deps.connections.limits, ready.connection));
    if (firstAttempt) pace().catch(() => undefined); // awaited where the path is chosen
    return pace;
  }

  /**
   * How the guard weighs the run before anything is sent: not on continuations. An approval covers
   * what was held: the same snapshot under the same settings; anything else is weighed afresh.
   */
  private guardPlan(
    run: RunRecord,
    ready: Ready,
    snapshotId: string,
    definition: string,
    manifestRead: Promise<Manifest | null>,
  ): Promise<GuardPlan> {
    const { approved, held: wasHeld, buckets } = run;
    const approvedAsHeld = !!approved && (!wasHeld || (wasHeld.snapshotId === snapshotId && wasHeld.definition === definition));
    if (approvedAsHeld || buckets) return Promise.resolve('none');
    return this.guard.plan(ready.exportRecord, ready.connection.baseUrl, run.fullSync, manifestRead);
  }

  /** Holds the run with the figures it was weighed at, and how long approving it would take to send. */
  private async hold(attempt: Attempt, ready: Ready, held: HeldFigures): Promise<void> {
    // At the connection's limits as they stand now (this attempt's own reservation given back first: it sends nothing).
    await attempt.limits?.cap?.release().catch(() => undefined);
    const estimate = await connectionDuration(this.deps.connections.limits, ready.connection, held.requests).catch(() => null);
    return holdRun(attempt, { ...held, ...(estimate ? { estimate: estimate.text } : {}) });
  }

  /** How an export run's attempt ends: cancelled, continued (time box, or the rate limit lost), or finished. */
  private async outcome(
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
    const { failed, removalsFailed } = run.counts!;
    const status = failed > 0 || removalsFailed > 0 ? 'partially_succeeded' : 'succeeded';
    // Another run taking the rate limit, or the hourly cap, says so itself; Braze's own reasons besides.
    const cause =
      limitLost && failed > 0
        ? "Another run took the Braze connection's rate limit while this one sent: the profiles not sent count as failed; the next run sends them"
        : (run.cappedNotSent ?? 0) > 0 && failed > 0
          ? "The connection's hourly request cap stopped this run mid-way: the profiles not sent then count as failed; the next run sends them"
          : null;
    const why = notTakenMessage({ profiles: failed, removals: removalsFailed }, run.failureReasons, cause !== null);
    const errors = [cause, why].filter((e): e is string => e !== null);
    await this.finish(writer, run, status, errors, exported, log);
  }

  /**
   * The guard's plan, read beside the look at the last run (both only read); null when that look
   * ends the run (the snapshot is in Braze already). The snapshot's pin is never left under way: a
   * run finished here names it (verification reads it), and a retry may pin another.
   */
  private async planOrShortcut(
    attempt: Attempt,
    ready: Ready,
    snapshotId: string,
    definition: string,
    reads: { pinned: Promise<void>; manifestRead: Promise<Manifest | null> },
  ): Promise<GuardPlan | null> {
    const planned = this.guardPlan(attempt.run, ready, snapshotId, definition, reads.manifestRead);
    planned.catch(() => undefined); // awaited unless the look at the last run ends the run
    try {
      const shortcut = !attempt.run.fullSync && !attempt.run.repairOf;
      if (shortcut && (await this.alreadyExported(attempt, snapshotId, definition, reads.pinned))) return null;
      return await planned;
    } finally {
      await reads.pinned.catch(() => undefined);
    }
  }

  /**
   * The same snapshot (by content: model.json and every partition's ETag) with the same settings was
   * fully exported by the last run: the diff is empty by construction, so nothing is read or sent.
   */
  private async alreadyExported(attempt: Attempt, snapshotId: string, definition: string, pinned: Promise<void>) {
    const done = await unchangedSinceLastRun(this.deps, attempt.run, snapshotId, definition);
    if (!done) return false;
    await pinned;
    await this.finish(attempt.writer, done, 'succeeded', [], { snapshotId, definition }, attempt.log);
    return true;
  }
}

/**
 * Whether this attempt is the run's first to send (it may send early). An attempt that was held sent
 * nothing: the approved one after it is the first to send. Under an hourly cap nothing is sent
 * early: a run stopped at the cap while reading could not go on next hour.
 */
const firstToSend = (attempt: Attempt) => attempt.run.attempts - (attempt.run.heldAttempts ?? 0) === 1 && !attempt.limits?.cap;
