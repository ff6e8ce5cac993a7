// A cleanup run's attempt: withdraw the export's membership everywhere its sync state says Braze
// holds it, then delete or detach the export as the user asked.
import { StateTakenOver } from '../engine/stop';
import { withdrawAll, type WithdrawCounts } from '../engine/withdraw';
import type { ExportsService } from '../exports/service';
import type { RunRecord } from '../store/runs';
import type { Attempt, Finish, Log, Ready } from './attempt';
import type { RunWriter } from './run-writer';

export class CleanupAttempts {
  constructor(
    private readonly exportsService: Pick<ExportsService, 'deleteAfterCleanup' | 'detachAfterCleanup'>,
    private readonly finish: Finish,
  ) {}

  async run(attempt: Attempt, ready: Ready): Promise<void> {
    const asCounts = (c: WithdrawCounts) => ({ rowsRead: 0, unchanged: 0, sent: 0, failed: 0, newProfiles: 0, ...c });
    const counts = await withdrawAll({
      definition: ready.exportRecord,
      state: ready.state,
      braze: ready.braze,
      shouldStop: ready.shouldStop,
      beforeCheckpoint: ready.beforeCheckpoint,
      onProgress: async (c) => {
        attempt.run = { ...attempt.run, counts: asCounts(c), heartbeatAt: new Date().toISOString() };
        await attempt.writer.write(attempt.run);
      },
    });
    if (attempt.writer.takenOver || attempt.exportLease.lost) throw new StateTakenOver('the run was taken over while it ran');
    attempt.run = { ...attempt.run, counts: asCounts(counts), requests: ready.braze.requests };
    await this.finishCleanup(attempt.writer, attempt.run, counts.removalsFailed, attempt.log);
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
    if (run.then === 'delete') await this.exportsService.deleteAfterCleanup(run.exportId);
    else
      await this.exportsService.detachAfterCleanup(
        run.exportId,
        run.queuedByPrincipal ?? { name: run.queuedBy, objectId: null, tenantId: null },
      );
    log(
      `run ${run.id} export ${run.exportId}: membership withdrawn from Braze; export ${run.then === 'delete' ? 'deleted' : 'detached'}`,
    );
  }
}
