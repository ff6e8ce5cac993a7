import { app, type InvocationContext, type Timer } from '@azure/functions';
import { firstLine } from '../shared/errors';
import { runEndedLine } from '../shared/runs/run-log';
import { services } from '../shared/services';

/** Timer: queue due exports whose CI snapshot is newer than the last one exported; re-queue stalled runs. */
export async function scheduledRefresh(_timer: Timer, context: InvocationContext): Promise<void> {
  const app = services();
  try {
    await app.ready;
    const s = await app.scheduler.tick(new Date(), (line) => context.log(line));
    context.log(
      `scheduledRefresh: queued=${s.queued.length} unchanged=${s.unchanged.length} skipped=${s.skipped.length} requeued=${s.requeued.length} errors=${s.errors.length}`,
    );
    // An export the timer could not check runs no more until someone looks: it alerts like a failed run.
    for (const e of s.errors)
      context.log(runEndedLine({ runId: null, exportId: e.exportId, status: 'failed', by: 'timer', errors: [e.reason] }));
  } catch (e) {
    // The whole tick failed (settings, storage refusing…): no export is checked until it is fixed.
    context.error(runEndedLine({ runId: null, exportId: null, status: 'failed', by: 'timer', errors: [firstLine(e)] }));
    throw e;
  }
}

app.timer('scheduledRefresh', { schedule: '%SCHEDULED_REFRESH_SCHEDULE%', runOnStartup: false, handler: scheduledRefresh });
