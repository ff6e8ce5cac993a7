import { app } from '@azure/functions';
import { api, ifMatch, json, readJson, withEtag } from '../shared/http';

/** GET / PATCH / DELETE /api/connections/{id}. */
export const connectionItem = api(async ({ request, caller, app: { connections } }) => {
  const id = request.params.id!;
  if (request.method === 'DELETE') {
    await connections.delete(caller, id, ifMatch(request));
    return json(204, undefined);
  }
  const stored =
    request.method === 'PATCH'
      ? await connections.update(caller, id, await readJson(request), ifMatch(request))
      : await connections.get(caller, id);
  return withEtag(200, await connections.view(stored.value, caller), stored.etag);
});

app.http('connectionItem', {
  methods: ['GET', 'PATCH', 'DELETE'],
  route: 'api/connections/{id}',
  authLevel: 'anonymous',
  handler: connectionItem,
});
