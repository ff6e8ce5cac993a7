import { app } from '@azure/functions';
import { api, ifMatch, withEtag } from '../shared/http';

/** POST /api/exports/{id}/detach: keep the export, inactive and without a connection. */
export const exportDetach = api(async ({ request, caller, app: { exports } }) => {
  const detached = await exports.detach(caller, request.params.id!, ifMatch(request));
  return withEtag(200, await exports.view(detached.value), detached.etag);
});

app.http('exportDetach', { methods: ['POST'], route: 'exports/{id}/detach', authLevel: 'anonymous', handler: exportDetach });
