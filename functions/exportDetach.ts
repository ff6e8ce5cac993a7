import { app } from '@azure/functions';
import { api, cleanupAccepted, ifMatch, withEtag } from '../shared/http';

/**
 * POST /api/exports/{id}/detach[?keepBrazeData=true]: keep the export, inactive and without a
 * connection. When Braze holds its membership: 202 with the cleanup run that withdraws it first.
 */
export const exportDetach = api(async ({ request, caller, app: { exports } }) => {
  const keepBrazeData = request.query.get('keepBrazeData') === 'true';
  const outcome = await exports.detach(caller, request.params.id!, ifMatch(request), keepBrazeData);
  if ('cleanupRun' in outcome) return cleanupAccepted(outcome.cleanupRun, 'detached');
  return withEtag(200, await exports.view(outcome.value), outcome.etag);
});

app.http('exportDetach', { methods: ['POST'], route: 'api/exports/{id}/detach', authLevel: 'anonymous', handler: exportDetach });
