// The scheduled refresh (timer): queue every export whose schedule is on (and whose optional cron
// fired) when CI has written a snapshot newer than the last one exported; re-queue stalled runs.
import type { BlobServiceClient } from '@azure/storage-blob';
import { definitionFingerprint } from '../engine';
import { firstLine } from '../errors';
import { occursBetween } from '../schedule';
import { locateSnapshot, SnapshotUnavailable } from '../snapshot/locate';
import { exportVerdict } from './already-exported';
import type { ConnectionsRepo } from '../store/connections';
import type { ExportStateRepo } from '../store/export-state';
import { CLEANING_UP, type ExportRecord, type ExportsRepo } from '../store/exports';
import type { Stored } from '../store/connections';
import { FINISHED, type RunRecord, type RunsRepo } from '../store/runs';
import type { RunsService } from './service';
import { runEndedLine } from './run-log';
import type { Log } from './worker';

/** A running run silent this long (or queued this long) has lost its worker. */
export const STALL_MS = 10 * 60_000;
/** Stall re-queues before the run is given up (each worker attempt is capped separately). */
export const MAX_STALL_REQUEUES = 5;

export interface RefreshSummary {
  queued: string[];
  unchanged: string[];
  skipped: { exportId: string; reason: string }[];
  requeued: string[];
  /** Exports whose check failed unexpectedly this tick (recorded on the export's lastCheck). */
  errors: { exportId: string; reason: string }[];
}

export class ScheduledRefresh {
  constructor(
    private readonly exports: ExportsRepo,
    private readonly state: ExportStateRepo,
    private readonly runs: RunsRepo,
    private readonly runsService: RunsService,
    private readonly connections: ConnectionsRepo,
    private readonly ciBlobs: BlobServiceClient,
    /** Finishes the delete or detach of an export whose cleanup run succeeded (ExportsService). */
    private readonly cleanups: { completeCleanup(exportId: string): Promise<boolean> },
    private readonly defaultIntervalMs = 5 * 60_000,
  ) {}

  async tick(now: Date, log: Log): Promise<RefreshSummary> {
    const summary: RefreshSummary = { queued: [], unchanged: [], skipped: [], requeued: [], errors: [] };
    for (const { value: exp } of await this.exports.list()) {
      // One export's trouble (a 412 while CI rewrites model.json, a 5xx, a name Azure refuses)
      // must not keep the others from running, or stalled runs from being re-queued.
      try {
        await this.check(exp, now, summary, log);
      } catch (e) {
        const message = `error: ${firstLine(e)}`;
        summary.errors.push({ exportId: exp.id, reason: message });
        log(`scheduledRefresh export ${exp.id}: ${message}`);
        await this.state
          .modify(exp.id, (s) => ({ ...s, lastCheck: { at: now.toISOString(), result: message } }))
          .catch(() => undefined);
      }
    }
    return summary;
  }

  private async check(exp: ExportRecord, now: Date, summary: RefreshSummary, log: Log): Promise<void> {
    const state = (await this.state.get(exp.id))?.value;
    if (state?.activeRunId) {
      const active = await this.runs.get(state.activeRunId).catch(() => null);
      if (active?.value.status !== 'held') return this.requeueIfStalled(active, now, summary, log);
      if (!(await this.replaceHeldIfNewer(exp, active, now, log))) {
        summary.skipped.push({
          exportId: exp.id,
          reason: `run ${active.value.id} is held: waiting for a person to approve or dismiss it`,
        });
        return;
      }
    }
    // Being deleted or detached: never queued again. A succeeded cleanup whose last step did not
    // happen is finished here; a failed or cancelled one waits for a retry or a restore.
    if (CLEANING_UP.includes(exp.status)) {
      if (await this.cleanups.completeCleanup(exp.id))
        log(`scheduledRefresh export ${exp.id}: cleanup had succeeded; ${exp.status} finished`);
      else summary.skipped.push({ exportId: exp.id, reason: `${exp.status}: waiting for its cleanup run, a retry or a restore` });
      return;
    }
    if (exp.status !== 'active' || !exp.schedule.enabled || !exp.connectionId) return;
    const lastCheckAt = state?.lastCheck ? new Date(state.lastCheck.at) : new Date(now.getTime() - this.defaultIntervalMs);
    if (exp.schedule.cron && !occursBetween(exp.schedule.cron, lastCheckAt, now)) return;

    let result: string;
    try {
      const snapshot = await locateSnapshot(this.ciBlobs, exp.source, exp.segments, now);
      const verdict = exportVerdict(state, snapshot.id, await this.settingsFingerprint(exp));
      // Refused profiles get one more try per snapshot (as a manual run gives them), not one per tick.
      if (verdict === 'exported' || (verdict === 'refused-last-time' && state?.refusalsRetriedFor === snapshot.id)) {
        summary.unchanged.push(exp.id);
        result = 'snapshot and settings unchanged since the last export';
      } else if (state?.dismissedSnapshotId === snapshot.id) {
        summary.skipped.push({
          exportId: exp.id,
          reason: 'its held run was dismissed: waiting for a newer snapshot (or a manual run)',
        });
        result = 'held run dismissed for this snapshot: waiting for a newer one';
      } else {
        if (verdict === 'refused-last-time') await this.state.modify(exp.id, (s) => ({ ...s, refusalsRetriedFor: snapshot.id }));
        const outcome = await this.runsService.start(exp, 'schedule', 'scheduledRefresh');
        if ('queued' in outcome) {
          summary.queued.push(exp.id);
          result = `queued run ${outcome.queued.id}`;
        } else result = `run ${outcome.active.id} is already ${outcome.active.status}`;
      }
    } catch (e) {
      if (!(e instanceof SnapshotUnavailable)) throw e;
      summary.skipped.push({ exportId: exp.id, reason: e.message });
      result = `not exported: ${e.message}`;
    }
    log(`scheduledRefresh export ${exp.id}: ${result}`);
    await this.state.modify(exp.id, (s) => ({ ...s, lastCheck: { at: now.toISOString(), result } }));
  }

  /**
   * A held run waits for a person while its snapshot is the newest: the timer does not queue the
   * export again. Once CI has written a newer one, the held run is dismissed and the newer snapshot
   * is evaluated afresh (true: the export is free for that).
   */
  private async replaceHeldIfNewer(exp: ExportRecord, held: Stored<RunRecord>, now: Date, log: Log): Promise<boolean> {
    if (exp.status !== 'active' || !exp.schedule.enabled) return false;
    const newest = await locateSnapshot(this.ciBlobs, exp.source, exp.segments, now).catch((e: unknown) => {
      if (e instanceof SnapshotUnavailable) return null;
      throw e;
    });
    if (!newest || newest.id === held.value.held?.snapshotId) return false;
    const reason = `Replaced: CI wrote a newer snapshot (${newest.folder}, ${newest.modifiedTime}) while this run was held; nothing was sent`;
    if (!(await this.runsService.finishIfUnchanged(held, 'cancelled', [reason]))) return false;
    log(runEndedLine({ runId: held.value.id, exportId: exp.id, status: 'cancelled', by: 'timer', errors: [reason] }));
    return true;
  }

  /** What the worker compares too: a changed mapping, segment list or endpoint is worth a run. */
  private async settingsFingerprint(exp: ExportRecord): Promise<string | null> {
    const connection = await this.connections.get(exp.connectionId!).then(
      (c) => c.value,
      () => null,
    );
    return connection ? definitionFingerprint(exp, connection.baseUrl) : null;
  }

  /** `stored`: the export's active run as just read (null: gone). */
  private async requeueIfStalled(stored: Stored<RunRecord> | null, now: Date, summary: RefreshSummary, log: Log): Promise<void> {
    if (!stored || FINISHED.includes(stored.value.status)) return;
    const run = stored.value;
    // A run waiting for the next hour of its connection's hourly cap is not silent until that hour has come.
    const lastSign = Math.max(new Date(run.heartbeatAt ?? run.queuedAt).getTime(), run.resumesAt ? Date.parse(run.resumesAt) : 0);
    if (now.getTime() - lastSign < STALL_MS) return;
    const since = new Date(lastSign).toISOString();
    if ((run.stallRequeues ?? 0) >= MAX_STALL_REQUEUES) {
      // Messages keep getting lost or no worker ever picks the run up: end it so the export is free.
      const reason = `No worker has picked this run up since ${since}, after ${run.stallRequeues} re-queues; check the function app's logs, then run the export again`;
      await this.runsService.finishIfUnchanged(stored, 'failed', [reason]);
      log(runEndedLine({ runId: run.id, exportId: run.exportId, status: 'failed', by: 'stall-check', errors: [reason] }));
      return;
    }
    // Conditional on what was read: a worker that came back meanwhile wins, and its run is not overwritten.
    const marked = await this.runs.updateIfUnchanged(
      { ...run, heartbeatAt: now.toISOString(), stallRequeues: (run.stallRequeues ?? 0) + 1 },
      stored.etag,
    );
    if (!marked) return;
    await this.runsService.enqueue(run.id);
    summary.requeued.push(run.id);
    log(`scheduledRefresh: run ${run.id} showed no progress since ${since}; re-queued to resume from its checkpoint`);
  }
}
