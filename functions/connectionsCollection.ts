import { app } from '@azure/functions';
import { api, json, readJson, withEtag } from '../shared/http';

/** GET /api/connections (Admin; Contributor sees shared ones) · POST /api/connections (Admin). */
export const connectionsCollection = api(async ({ request, caller, app: { connections } }) => {
  if (request.method === 'GET') return json(200, { value: await connections.list(caller) });
  const created = await connections.create(caller, await readJson(request));
  return withEtag(201, await connections.view(created.value, caller), created.etag, {
    Location: `/api/connections/${created.value.id}`,
  });
});

app.http('connectionsCollection', {
  methods: ['GET', 'POST'],
  route: 'api/connections',
  authLevel: 'anonymous',
  handler: connectionsCollection,
});
