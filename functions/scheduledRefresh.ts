import { app, type InvocationContext, type Timer } from '@azure/functions';
import { services } from '../shared/services';

/** Timer: queue due exports whose CI snapshot is newer than the last one exported; re-queue stalled runs. */
export async function scheduledRefresh(_timer: Timer, context: InvocationContext): Promise<void> {
  const app = services();
  await app.ready;
  const s = await app.scheduler.tick(new Date(), (line) => context.log(line));
  context.log(
    `scheduledRefresh: queued=${s.queued.length} unchanged=${s.unchanged.length} skipped=${s.skipped.length} requeued=${s.requeued.length} errors=${s.errors.length}`,
  );
}

app.timer('scheduledRefresh', { schedule: '%SCHEDULED_REFRESH_SCHEDULE%', runOnStartup: false, handler: scheduledRefresh });
