import { app } from '@azure/functions';
import { api, json } from '../shared/http';

/** POST /api/connections/{id}/test (Admin): checks the stored key against Braze without changing any profile. */
export const connectionTest = api(async ({ request, caller, app: { connections } }) =>
  json(200, await connections.test(caller, request.params.id!)),
);

app.http('connectionTest', {
  methods: ['POST'],
  route: 'api/connections/{id}/test',
  authLevel: 'anonymous',
  handler: connectionTest,
});
