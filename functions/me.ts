import { app } from '@azure/functions';
import { canWrite } from '../shared/auth';
import { api, json } from '../shared/http';

/** GET /api/me: who the caller is and what the console may offer them (write controls, connections). */
export const me = api(async ({ caller }) =>
  json(200, { name: caller.name, role: caller.role, canWrite: canWrite(caller), isAdmin: caller.role === 'Admin' }),
);

app.http('me', { methods: ['GET'], route: 'api/me', authLevel: 'anonymous', handler: me });
