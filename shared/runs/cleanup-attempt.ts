// A cleanup run's attempt: withdraw the export's membership everywhere its sync state says Braze
// holds it, then have the export deleted or detached as the user asked. Time-boxed like an export
// run: it stops between buckets, is queued again and goes on from the next bucket; counts add up
// across attempts. Under the connection's hourly cap it reserves each bucket's requests before the
// bucket goes and, once the cap is reached, waits for the next hour (hourly-wait.ts) rather than
// counting what the cap kept back as failed: the next attempt goes on from the bucket it stopped in.
import { failureReasonsAfter } from '../braze/client';
import { withdrawAll, type WithdrawCounts } from '../engine';
import type { ExportsService } from '../exports/service';
import type { RunRecord } from '../store/runs';
import { assertStillOurs, type Attempt, type Finish, type Log, type Ready } from './attempt';
import type { RunWriter } from './run-writer';
import { waitForTheHour } from './hourly-wait';
import { counted } from './not-taken';

const asCounts = (c: WithdrawCounts) => ({ rowsRead: 0, unchanged: 0, sent: 0, failed: 0, newProfiles: 0, ...c });

/** What earlier attempts of the run withdrew. */
const countedBefore = (run: RunRecord): WithdrawCounts | undefined =>
  run.withdrawnBuckets !== undefined && run.counts
    ? {
        profiles: run.counts.profiles,
        removed: run.counts.removed,
        removalsFailed: run.counts.removalsFailed,
        rejected: run.counts.rejected,
      }
    : undefined;

export class CleanupAttempts {
  constructor(
    private readonly exportsService: Pick<ExportsService, 'completeCleanup'>,
    private readonly finish: Finish,
    private readonly timeBudgetMs: number,
  ) {}

  async run(attempt: Attempt, ready: Ready): Promise<void> {
    const before = attempt.run;
    // Nothing to withdraw (the data stays in Braze, or nothing was ever sent): a stalled run picked
    // up again only finishes the delete or detach.
    if (before.keepBrazeData) return this.finishCleanup(attempt.writer, before, 0, attempt.log);
    const requestsBefore = before.withdrawnBuckets !== undefined ? before.requests : undefined;
    const cap = attempt.limits?.cap ?? null;
    const result = await withdrawAll({
      definition: ready.exportRecord,
      state: ready.state,
      braze: ready.braze,
      shouldStop: ready.shouldStop,
      shouldYield: () => Date.now() - attempt.started > this.timeBudgetMs,
      startBucket: before.withdrawnBuckets ?? 0,
      counted: countedBefore(before),
      beforeCheckpoint: ready.beforeCheckpoint,
      beforeBucket: cap ? (requests) => cap.reserveFor(requests) : undefined,
      capReached: cap ? () => cap.reached : undefined,
      onProgress: async (c, nextBucket) => {
        attempt.run = {
          ...attempt.run,
          counts: asCounts(c),
          failureReasons: failureReasonsAfter(before.failureReasons, ready.braze),
          withdrawnBuckets: nextBucket,
          heartbeatAt: new Date().toISOString(),
        };
        await attempt.writer.write(attempt.run);
      },
    });
    assertStillOurs(attempt, 'the run was taken over while it ran');
    const { nextBucket, capped: _capped, ...counts } = result;
    const sent = ready.braze.requests;
    const requests = requestsBefore
      ? {
          sent: requestsBefore.sent + sent.sent,
          retried: requestsBefore.retried + sent.retried,
          rateLimited: requestsBefore.rateLimited + sent.rateLimited,
        }
      : sent;
    const failureReasons = failureReasonsAfter(before.failureReasons, ready.braze);
    attempt.run = { ...attempt.run, counts: asCounts(counts), requests, failureReasons };
    if (nextBucket !== null && !attempt.writer.cancelRequested) {
      if (cap?.reached) {
        attempt.run = { ...attempt.run, withdrawnBuckets: nextBucket };
        return waitForTheHour(attempt, cap, true);
      }
      return this.continueLater(attempt, nextBucket);
    }
    await this.finishCleanup(attempt.writer, attempt.run, counts.removalsFailed, attempt.log);
  }

  /** The time box (or the rate limit lost to another run): the next attempt goes on from `nextBucket`. */
  private async continueLater(attempt: Attempt, nextBucket: number): Promise<void> {
    const run = (attempt.run = {
      ...attempt.run,
      withdrawnBuckets: nextBucket,
      heartbeatAt: new Date().toISOString(),
      continuations: (attempt.run.continuations ?? 0) + 1,
    });
    await attempt.writer.write(run);
    attempt.requeueIn = 0;
    attempt.log(
      `run ${run.id} export ${run.exportId}: cleanup stopped after ${nextBucket} buckets (time box); continuation queued`,
    );
  }

  /**
   * The membership is withdrawn: now the export is deleted or detached, as the user asked. If some
   * withdrawals failed (or the run was cancelled) the export stays `deleting` / `detaching`, so
   * nothing is let go while Braze still holds it, until the cleanup is retried or the export restored.
   */
  private async finishCleanup(writer: RunWriter, run: RunRecord, removalsFailed: number, log: Log): Promise<void> {
    const what = run.then === 'delete' ? 'deleted' : 'detached';
    const wayOut = `Retry the cleanup (POST /api/exports/${run.exportId}/retry-cleanup, or ${run.then === 'delete' ? 'DELETE' : 'detach'} again; ?keepBrazeData=true leaves what remains) or restore the export (POST /api/exports/${run.exportId}/restore, which queues a full sync)`;
    if (writer.cancelRequested)
      return this.finish(writer, run, 'cancelled', [`Cancelled: the export was not ${what}. ${wayOut}`], null, log);
    if (removalsFailed > 0) {
      const why = run.failureReasons?.length ? ` (${run.failureReasons.join('; ')})` : '';
      const reason = `${counted(removalsFailed, 'withdrawal', 'withdrawals')} could not be delivered${why}; the export was kept (${run.then === 'delete' ? 'deleting' : 'detaching'}). ${wayOut}`;
      return this.finish(writer, run, 'partially_succeeded', [reason], null, log);
    }
    await this.finish(writer, run, 'succeeded', [], null, log);
    if (writer.takenOver) return;
    // Should this fail, the export stays `deleting` / `detaching` with a succeeded cleanup: the
    // message's next delivery, the timer or a retry finishes it.
    await this.exportsService.completeCleanup(run.exportId, run.id);
    log(`run ${run.id} export ${run.exportId}: membership withdrawn from Braze; export ${what}`);
  }
}
