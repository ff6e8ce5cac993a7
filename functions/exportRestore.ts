import { app } from '@azure/functions';
import { api, ifMatch, withEtag } from '../shared/http';

/**
 * POST /api/exports/{id}/restore (Admin; Contributor on a shared connection): a `deleting` /
 * `detaching` export whose cleanup failed or was cancelled becomes `active` again, and a full sync
 * is queued (the cleanup took the profiles it withdrew off the sync state; the full sync sends
 * their membership and attributes again). 202 with the export and the run. 409 while the cleanup
 * runs (cancel it first), or when the export is not being deleted or detached.
 */
export const exportRestore = api(async ({ request, caller, app: { exports } }) => {
  const { export: restored, fullSyncRun } = await exports.restore(caller, request.params.id!, ifMatch(request));
  const location = `/api/runs/${fullSyncRun.id}`;
  return withEtag(
    202,
    {
      ...(await exports.view(restored.value)),
      fullSyncRun: { id: fullSyncRun.id, status: fullSyncRun.status, location },
      message: 'The export is active again; a full sync is queued to send its membership and attributes to Braze again',
    },
    restored.etag,
    { Location: location },
  );
});

app.http('exportRestore', {
  methods: ['POST'],
  route: 'api/exports/{id}/restore',
  authLevel: 'anonymous',
  handler: exportRestore,
});
