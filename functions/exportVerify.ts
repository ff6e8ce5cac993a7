import { app } from '@azure/functions';
import { z } from 'zod';
import { api, json, readOptionalJson } from '../shared/http';
import { activeRunConflict } from '../shared/runs/service';
import { parseInput } from '../shared/validation';

/** `sample`: verify this many random profiles through /users/export/ids instead of the whole proof segment. */
const VerifySchema = z.strictObject({ sample: z.number().int().min(1).max(100_000).optional() });

/** POST /api/exports/{id}/verify [{ "sample": 2000 }]: 202 + Location of the queued verification run; 409 if a run of the export is going. */
export const exportVerify = api(async ({ request, caller, app: { verify } }) => {
  const { sample } = parseInput(VerifySchema, (await readOptionalJson(request)) ?? {});
  const outcome = await verify.verifyNow(caller, request.params.id!, sample);
  if ('active' in outcome) throw activeRunConflict(outcome.active);
  const run = outcome.queued;
  return json(202, { runId: run.id, status: run.status, location: `/api/runs/${run.id}` }, { Location: `/api/runs/${run.id}` });
});

app.http('exportVerify', { methods: ['POST'], route: 'api/exports/{id}/verify', authLevel: 'anonymous', handler: exportVerify });
