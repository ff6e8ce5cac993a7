import { app, type InvocationContext } from '@azure/functions';
import { z } from 'zod';
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
  context.log(
    `exportWorkerPoison: run ${parsed.data.runId}: ${failed ? 'marked failed; its export is free' : 'already finished or gone'}`,
  );
}

app.storageQueue('exportWorkerPoison', {
  queueName: `${RUN_QUEUE}-poison`,
  connection: 'AzureWebJobsStorage',
  handler: exportWorkerPoison,
});
