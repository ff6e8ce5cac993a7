import { app } from '@azure/functions';
import { api, json } from '../shared/http';
import { runView } from '../shared/runs/view';

/** POST /api/runs/{runId}/approve: a held run is queued to send exactly what it held; 409 if it is not held. */
export const runApprove = api(async ({ request, caller, app: { runs } }) => {
  const run = await runs.approve(caller, request.params.runId!);
  return json(202, runView(run), { Location: `/api/runs/${run.id}` });
});

app.http('runApprove', { methods: ['POST'], route: 'api/runs/{runId}/approve', authLevel: 'anonymous', handler: runApprove });
