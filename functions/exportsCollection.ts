import { app } from '@azure/functions';
import { api, json, readJson, withEtag } from '../shared/http';

/** GET /api/exports (all roles) · POST /api/exports (Admin; Contributor on a shared connection). Saving never runs. */
export const exportsCollection = api(async ({ request, caller, app: { exports } }) => {
  if (request.method === 'GET') return json(200, { value: await exports.listViews() });
  const created = await exports.create(caller, await readJson(request));
  return withEtag(201, await exports.view(created.value), created.etag, { Location: `/api/exports/${created.value.id}` });
});

app.http('exportsCollection', {
  methods: ['GET', 'POST'],
  route: 'api/exports',
  authLevel: 'anonymous',
  handler: exportsCollection,
});
