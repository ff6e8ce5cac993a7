import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { callerIsAdmin, checkHealth } from '../shared/health';
import { API_HEADERS } from '../shared/http';

/** GET /api/health (anonymous, for monitors): 200 `{status}` when settings, storage and Key Vault answer, 503 when not; details for an Admin. */
export async function health(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const result = await checkHealth();
  if (result.status !== 'healthy') context.warn(`health: ${JSON.stringify(result.checks)}`);
  const body = callerIsAdmin(request.headers, request.url) ? result : { status: result.status };
  return { status: result.status === 'healthy' ? 200 : 503, jsonBody: body, headers: API_HEADERS };
}

app.http('health', { methods: ['GET'], route: 'api/health', authLevel: 'anonymous', handler: health });
