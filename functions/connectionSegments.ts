import { app } from '@azure/functions';
import { api, json } from '../shared/http';

/** GET /api/connections/{id}/segments (Admin; Contributor on a shared connection): the Braze workspace's segments, or why they cannot be listed. */
export const connectionSegments = api(async ({ request, caller, app: { connections } }) =>
  json(200, await connections.brazeSegments(caller, request.params.id!)),
);

app.http('connectionSegments', {
  methods: ['GET'],
  route: 'api/connections/{id}/segments',
  authLevel: 'anonymous',
  handler: connectionSegments,
});
