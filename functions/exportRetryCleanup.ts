import { app } from '@azure/functions';
import { api, cleanupAccepted, ifMatch, json, withEtag } from '../shared/http';

/**
 * POST /api/exports/{id}/retry-cleanup (Admin; Contributor on a shared connection): a `deleting` /
 * `detaching` export whose cleanup run failed or was cancelled gets a new one (202 + the run); a
 * cleanup that had succeeded is finished at once (204 deleted, 200 detached). 409 when the export
 * is not being deleted or detached, or its cleanup is still going.
 */
export const exportRetryCleanup = api(async ({ request, caller, app: { exports } }) => {
  const outcome = await exports.retryCleanup(caller, request.params.id!, ifMatch(request));
  if ('cleanupRun' in outcome) return cleanupAccepted(outcome.cleanupRun, 'let go');
  if (!outcome.done) return json(204, undefined);
  return withEtag(200, await exports.view(outcome.done.value), outcome.done.etag);
});

app.http('exportRetryCleanup', {
  methods: ['POST'],
  route: 'api/exports/{id}/retry-cleanup',
  authLevel: 'anonymous',
  handler: exportRetryCleanup,
});
