import { app } from '@azure/functions';
import { api, json } from '../shared/http';
import { runView } from '../shared/runs/view';

/** POST /api/runs/{runId}/cancel: 202 with the run (cancelled at once if queued; a running one stops within seconds); 409 if it already ended. */
export const runCancel = api(async ({ request, caller, app: { runs } }) => {
  const run = await runs.cancel(caller, request.params.runId!);
  return json(202, runView(run), { Location: `/api/runs/${run.id}` });
});

app.http('runCancel', { methods: ['POST'], route: 'api/runs/{runId}/cancel', authLevel: 'anonymous', handler: runCancel });
