import { app, type InvocationContext } from '@azure/functions';
import { z } from 'zod';
import { runEndedLine } from '../shared/runs/run-log';
import { RUN_QUEUE } from '../shared/store/clients';
import { services } from '../shared/services';

const RunMessage = z.object({ runId: z.string().min(1).max(200) });

/** Poison queue: a run whose worker failed on every dequeue ends `failed`, and its export is free again. */
export async function exportWorkerPoison(message: unknown, context: InvocationContext): Promise<void> {
  const parsed = RunMessage.safeParse(message);
  if (!parsed.success) {
    context.error('exportWorkerPoison: ignoring a message that is not {"runId": ...}');
    return;
  }
  const app = services();
  await app.ready;
  const failed = await app.runs.failPoisoned(parsed.data.runId);
  if (!failed) return context.log(`exportWorkerPoison: run ${parsed.data.runId}: already finished or gone`);
  context.log(
    runEndedLine({ runId: failed.id, exportId: failed.exportId, status: 'failed', by: 'poison-queue', errors: failed.errors }),
  );
}

app.storageQueue('exportWorkerPoison', {
  queueName: `${RUN_QUEUE}-poison`,
  connection: 'AzureWebJobsStorage',
  handler: exportWorkerPoison,
});
