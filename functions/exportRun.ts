import { app } from '@azure/functions';
import { RunNowSchema } from '../shared/exports/schema';
import { api, json, readOptionalJson } from '../shared/http';
import { activeRunConflict } from '../shared/runs/service';
import { parseInput } from '../shared/validation';

/** POST /api/exports/{id}/run [{ "fullSync": true, "approve": true }]: 202 + Location of the queued run; 409 if one is going. */
export const exportRun = api(async ({ request, caller, app: { runs } }) => {
  const options = parseInput(RunNowSchema, (await readOptionalJson(request)) ?? {});
  const outcome = await runs.runNow(caller, request.params.id!, options.fullSync, options.approve);
  if ('active' in outcome) throw activeRunConflict(outcome.active);
  const run = outcome.queued;
  return json(202, { runId: run.id, status: run.status, location: `/api/runs/${run.id}` }, { Location: `/api/runs/${run.id}` });
});

app.http('exportRun', { methods: ['POST'], route: 'api/exports/{id}/run', authLevel: 'anonymous', handler: exportRun });
