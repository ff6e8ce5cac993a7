import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { checkHealth } from '../shared/health';

/** GET /api/health (anonymous, for monitors): config, storage and Key Vault reachable, version. 503 when not. */
export async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const result = await checkHealth();
  if (result.status !== 'healthy') context.warn(`health: ${JSON.stringify(result.checks)}`);
  return { status: result.status === 'healthy' ? 200 : 503, jsonBody: result, headers: { 'Cache-Control': 'no-store' } };
}

app.http('health', { methods: ['GET'], route: 'health', authLevel: 'anonymous', handler: health });
