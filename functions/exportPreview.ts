import { app } from '@azure/functions';
import { z } from 'zod';
import { RunOptionsSchema } from '../shared/exports/schema';
import { api, json, readOptionalJson } from '../shared/http';
import { parseInput } from '../shared/validation';

/** `definition`: an edited, unsaved definition (as POST /api/exports takes it) to preview instead of the saved one. */
const PreviewOptionsSchema = RunOptionsSchema.extend({ definition: z.unknown().optional() });

/**
 * POST /api/exports/{id}/preview [{ "fullSync": true, "definition": {…} }] (Admin, Contributor): what
 * the next run would do and cost, from the newest snapshot — of the saved export, or of the edited
 * definition against its sync state (nothing is saved); sends nothing to Braze and writes nothing.
 */
export const exportPreview = api(async ({ request, caller, app: { preview, exports } }) => {
  const options = parseInput(PreviewOptionsSchema, (await readOptionalJson(request)) ?? {});
  const draft =
    options.definition === undefined ? undefined : await exports.checkedDefinition(caller, options.definition, 'definition');
  return json(200, await preview.preview(caller, request.params.id!, options.fullSync, draft));
});

app.http('exportPreview', {
  methods: ['POST'],
  route: 'api/exports/{id}/preview',
  authLevel: 'anonymous',
  handler: exportPreview,
});
