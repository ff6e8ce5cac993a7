import { app } from '@azure/functions';
import { z } from 'zod';
import { api, json, readOptionalJson } from '../shared/http';
import { parseInput } from '../shared/validation';

const RepairSchema = z.strictObject({ dryRun: z.boolean().default(false) });

/**
 * POST /api/runs/{runId}/repair [{ "dryRun": true }]: marks the verification's drift in the sync state
 * and queues the export run that re-sends exactly it (202 + Location); `dryRun` only says what it costs.
 */
export const runRepair = api(async ({ request, caller, app: { verify } }) => {
  const { dryRun } = parseInput(RepairSchema, (await readOptionalJson(request)) ?? {});
  const outcome = await verify.repair(caller, request.params.runId!, dryRun);
  if (!outcome.run) return json(200, outcome);
  const { run, ...cost } = outcome;
  const location = `/api/runs/${run.id}`;
  return json(202, { ...cost, runId: run.id, status: run.status, location }, { Location: location });
});

app.http('runRepair', { methods: ['POST'], route: 'api/runs/{runId}/repair', authLevel: 'anonymous', handler: runRepair });
