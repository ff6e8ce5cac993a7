import { app } from '@azure/functions';
import { api, ifMatch, json, readJson, withEtag } from '../shared/http';

/** GET (all roles) / PATCH / DELETE (Admin; Contributor on a shared connection) /api/exports/{id}. */
export const exportItem = api(async ({ request, caller, app: { exports } }) => {
  const id = request.params.id!;
  if (request.method === 'DELETE') {
    await exports.delete(caller, id, ifMatch(request));
    return json(204, undefined);
  }
  const stored =
    request.method === 'PATCH' ? await exports.update(caller, id, await readJson(request), ifMatch(request)) : await exports.get(id);
  return withEtag(200, await exports.view(stored.value), stored.etag);
});

app.http('exportItem', { methods: ['GET', 'PATCH', 'DELETE'], route: 'exports/{id}', authLevel: 'anonymous', handler: exportItem });
