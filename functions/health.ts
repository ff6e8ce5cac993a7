import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { authenticate } from '../shared/auth';
import { checkHealth } from '../shared/health';
import { services } from '../shared/services';

/** An Admin sees the checks; anyone else (monitors, anonymous callers) only the status. */
function isAdmin(request: HttpRequest): boolean {
  try {
    let policy = { easyAuthEnabled: /^(true|1)$/i.test(process.env.WEBSITE_AUTH_ENABLED ?? ''), trustPrincipalHeaderLocally: false, anonymousAdmin: false };
    try {
      const { config } = services();
      policy = { easyAuthEnabled: config.easyAuthEnabled, trustPrincipalHeaderLocally: config.trustPrincipalHeaderLocally, anonymousAdmin: false };
    } catch {
      // Settings are broken: only an Easy Auth principal can be believed (the log names the setting).
    }
    return authenticate(request.headers, policy).role === 'Admin';
  } catch {
    return false;
  }
}

/** GET /api/health (anonymous, for monitors): 200 `{status}` when settings, storage and Key Vault answer, 503 when not; details for an Admin. */
export async function health(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const result = await checkHealth();
  if (result.status !== 'healthy') context.warn(`health: ${JSON.stringify(result.checks)}`);
  const body = isAdmin(request) ? result : { status: result.status };
  return { status: result.status === 'healthy' ? 200 : 503, jsonBody: body, headers: { 'Cache-Control': 'no-store' } };
}

app.http('health', { methods: ['GET'], route: 'health', authLevel: 'anonymous', handler: health });
