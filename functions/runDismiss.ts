import { app } from '@azure/functions';
import { api, json } from '../shared/http';
import { runView } from '../shared/runs/view';

/** POST /api/runs/{runId}/dismiss: a held run ends cancelled, nothing sent; 409 if it is not held. */
export const runDismiss = api(async ({ request, caller, app: { runs } }) => {
  const run = await runs.dismiss(caller, request.params.runId!);
  return json(200, runView(run));
});

app.http('runDismiss', { methods: ['POST'], route: 'api/runs/{runId}/dismiss', authLevel: 'anonymous', handler: runDismiss });
