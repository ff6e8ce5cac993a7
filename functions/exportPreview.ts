import { app } from '@azure/functions';
import { RunOptionsSchema } from '../shared/exports/schema';
import { api, json, readOptionalJson } from '../shared/http';
import { parseInput } from '../shared/validation';

/**
 * POST /api/exports/{id}/preview [{ "fullSync": true }] (Admin, Contributor): what the next run
 * would do and cost, from the newest snapshot; sends nothing to Braze and writes nothing.
 */
export const exportPreview = api(async ({ request, caller, app: { preview } }) => {
  const options = parseInput(RunOptionsSchema, (await readOptionalJson(request)) ?? {});
  return json(200, await preview.preview(caller, request.params.id!, options.fullSync));
});

app.http('exportPreview', {
  methods: ['POST'],
  route: 'api/exports/{id}/preview',
  authLevel: 'anonymous',
  handler: exportPreview,
});
