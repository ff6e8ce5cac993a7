import { app } from '@azure/functions';
import { api, json, readJson } from '../shared/http';

/**
 * POST /api/exports/preview (Admin; Contributor on a shared connection): the preview of a new
 * export's definition before it is saved — the body POST /api/exports takes, checked the same way —
 * as its first run. Saves nothing, sends nothing to Braze, writes nothing.
 */
export const exportDraftPreview = api(async ({ request, caller, app: { preview, exports } }) => {
  const draft = await exports.checkedDefinition(caller, await readJson(request));
  return json(200, await preview.preview(caller, null, false, draft));
});

app.http('exportDraftPreview', {
  methods: ['POST'],
  route: 'api/exports/preview',
  authLevel: 'anonymous',
  handler: exportDraftPreview,
});
