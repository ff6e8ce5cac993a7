import { app } from '@azure/functions';
import { api, withEtag } from '../shared/http';

/** POST /api/exports/{id}/duplicate: a copy with its schedule off. */
export const exportDuplicate = api(async ({ request, caller, app: { exports } }) => {
  const copy = await exports.duplicate(caller, request.params.id!);
  return withEtag(201, await exports.view(copy.value), copy.etag, { Location: `/api/exports/${copy.value.id}` });
});

app.http('exportDuplicate', {
  methods: ['POST'],
  route: 'api/exports/{id}/duplicate',
  authLevel: 'anonymous',
  handler: exportDuplicate,
});
