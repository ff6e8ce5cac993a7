import { app } from '@azure/functions';
import { api, cleanupAccepted, ifMatch, json, keepBrazeDataOf, withEtag } from '../shared/http';

/**
 * POST /api/exports/{id}/detach[?keepBrazeData=true]: keep the export, inactive and without a
 * connection. When Braze holds its membership: 202 with the cleanup run that withdraws it first
 * (the export is `detaching` meanwhile). 409 while a run is going.
 */
export const exportDetach = api(async ({ request, caller, app: { exports } }) => {
  const outcome = await exports.detach(caller, request.params.id!, ifMatch(request), keepBrazeDataOf(request));
  if ('cleanupRun' in outcome) return cleanupAccepted(outcome.cleanupRun, 'detached');
  if (!outcome.done) return json(204, undefined);
  return withEtag(200, await exports.view(outcome.done.value), outcome.done.etag);
});

app.http('exportDetach', { methods: ['POST'], route: 'api/exports/{id}/detach', authLevel: 'anonymous', handler: exportDetach });
