import { app } from '@azure/functions';
import { api, cleanupAccepted, ifMatch, json, keepBrazeDataOf, readJson, withEtag } from '../shared/http';

/** GET (all roles) / PATCH / DELETE[?keepBrazeData=true] (Admin; Contributor on a shared connection) /api/exports/{id}. */
export const exportItem = api(async ({ request, caller, app: { exports } }) => {
  const id = request.params.id!;
  if (request.method === 'DELETE') {
    // When Braze holds the export's membership, it is withdrawn first (202 + the cleanup run), unless ?keepBrazeData=true.
    const outcome = await exports.delete(caller, id, ifMatch(request), keepBrazeDataOf(request));
    return 'cleanupRun' in outcome ? cleanupAccepted(outcome.cleanupRun, 'deleted') : json(204, undefined);
  }
  const stored =
    request.method === 'PATCH'
      ? await exports.update(caller, id, await readJson(request), ifMatch(request))
      : await exports.get(id);
  return withEtag(200, await exports.view(stored.value), stored.etag);
});

app.http('exportItem', {
  methods: ['GET', 'PATCH', 'DELETE'],
  route: 'api/exports/{id}',
  authLevel: 'anonymous',
  handler: exportItem,
});
