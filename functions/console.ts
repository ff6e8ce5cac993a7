import { app, type HttpRequest } from '@azure/functions';
import { json } from '../shared/http';
import { consoleResponse } from '../shared/console/assets';

/**
 * GET / and /console/<file>: the web console (static, public: every figure it shows comes from
 * the API, which checks the caller). The catch-all route loses to every literal API route; an
 * unknown /api/… path is a JSON 404, as the API answers.
 */
export async function consolePage(request: HttpRequest) {
  const rest = request.params.path ?? '';
  if (rest === 'api' || rest.startsWith('api/')) return json(404, { error: { code: 'not_found', message: 'No such route' } });
  return consoleResponse(rest);
}

app.http('console', { methods: ['GET'], route: '{*path}', authLevel: 'anonymous', handler: consolePage });
