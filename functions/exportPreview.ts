import { app } from '@azure/functions';
import { z } from 'zod';
import { RunOptionsSchema } from '../shared/exports/schema';
import { api, ifMatch, json, readOptionalJson } from '../shared/http';
import { parseInput } from '../shared/validation';

/** `definition`: an edited, unsaved definition (as POST /api/exports takes it) to preview instead of the saved one. */
const PreviewOptionsSchema = RunOptionsSchema.extend({ definition: z.unknown().optional() });

/**
 * POST /api/exports/{id}/preview [{ "fullSync": true, "definition": {…} }] (Admin, Contributor): what
 * the next run would do and cost, from the newest snapshot — of the saved export, or of the edited
 * definition against its sync state (nothing is saved); sends nothing to Braze and writes nothing.
 * With a definition: 404/403 for the export before the draft's 400s; `If-Match` → 412 when stale.
 */
export const exportPreview = api(async ({ request, caller, app: { preview, exports } }) => {
  const id = request.params.id!;
  const options = parseInput(PreviewOptionsSchema, (await readOptionalJson(request)) ?? {});
  // The export is loaded and the caller's permission checked before an edit's draft is (404/403
  // first); `If-Match` (the ETag the edit started from) refuses a stale edit with 412.
  const draft =
    options.definition === undefined ? undefined : await exports.checkedEdit(caller, id, options.definition, ifMatch(request));
  return json(200, await preview.preview(caller, id, options.fullSync, draft));
});

app.http('exportPreview', {
  methods: ['POST'],
  route: 'api/exports/{id}/preview',
  authLevel: 'anonymous',
  handler: exportPreview,
});
