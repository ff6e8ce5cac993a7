import { app, type InvocationContext } from '@azure/functions';
import { z } from 'zod';
import { RUN_QUEUE } from '../shared/store/clients';
import { services } from '../shared/services';
import { runExecuting } from '../shared/preview/preview-slots';

const RunMessage = z.object({ runId: z.string().min(1).max(200) });

/** Queue worker: executes (or continues) one run. A throw lets the queue retry; the run resumes from its checkpoint. */
export async function exportWorker(message: unknown, context: InvocationContext): Promise<void> {
  const parsed = RunMessage.safeParse(message);
  if (!parsed.success) {
    context.error(`exportWorker: ignoring a message that is not {"runId": ...}`);
    return;
  }
  const app = services();
  await app.ready;
  // Counted while it executes, so previews on this instance leave it room (preview-slots.ts).
  const done = runExecuting();
  try {
    await app.worker.execute(parsed.data.runId, (line) => context.log(line));
  } finally {
    done();
  }
}

app.storageQueue('exportWorker', { queueName: RUN_QUEUE, connection: 'AzureWebJobsStorage', handler: exportWorker });
