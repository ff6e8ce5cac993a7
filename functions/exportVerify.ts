import { app } from '@azure/functions';
import { api, json } from '../shared/http';
import { activeRunConflict } from '../shared/runs/service';

/** POST /api/exports/{id}/verify: 202 + Location of the queued verification run; 409 if a run of the export is going. */
export const exportVerify = api(async ({ request, caller, app: { verify } }) => {
  const outcome = await verify.verifyNow(caller, request.params.id!);
  if ('active' in outcome) throw activeRunConflict(outcome.active);
  const run = outcome.queued;
  return json(202, { runId: run.id, status: run.status, location: `/api/runs/${run.id}` }, { Location: `/api/runs/${run.id}` });
});

app.http('exportVerify', { methods: ['POST'], route: 'api/exports/{id}/verify', authLevel: 'anonymous', handler: exportVerify });
