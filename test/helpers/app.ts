// Test wiring: real Azurite storage per test file, app settings pointing at it, and helpers to call
// handlers through @azure/functions' own HttpRequest / InvocationContext.
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { afterAll, beforeAll, expect } from 'vitest';
import { encodePrincipal } from '../../shared/auth';
import { resetServices, services } from '../../shared/services';
import { claimAzurite, type TestStorage } from './azurite';

export const TEST_SECRET_KEY = Buffer.alloc(32, 7).toString('base64');

export function testEnv(connectionString: string): Record<string, string> {
  return {
    AzureWebJobsStorage: connectionString,
    CI_EXPORT_STORAGE_CONNECTION_STRING: connectionString,
    LOCAL_SECRET_KEY: TEST_SECRET_KEY,
    LOCAL_TRUST_PRINCIPAL_HEADER: 'true',
    LOCAL_ANONYMOUS_ADMIN: 'false',
    LOCAL_EXTRA_BRAZE_HOSTS: '127.0.0.1:*',
    // Most tests save connections with made-up keys and hosts; the key check has tests of its own.
    LOCAL_SKIP_KEY_CHECK: 'true',
  };
}

/** Gives this file its own Azurite storage and points the in-process app at it. */
export function useAzurite(extraEnv: Record<string, string> = {}): { azurite: () => TestStorage } {
  let azurite: TestStorage | undefined;
  // Files may share a process: the settings this file sets go with it.
  const envBefore = { ...process.env };
  beforeAll(async () => {
    azurite = await claimAzurite();
    Object.assign(process.env, testEnv(azurite.connectionString), extraEnv);
    // The real Braze client, with a fast backoff: a 5xx retried costs milliseconds, not seconds.
    resetServices({ brazeOptions: { backoffBaseMs: 20 } });
    await services().ready;
  });
  afterAll(async () => {
    await azurite?.stop();
    for (const name of Object.keys(process.env)) if (!(name in envBefore)) delete process.env[name];
    Object.assign(process.env, envBefore);
  });
  return { azurite: () => azurite! };
}

export type Who = 'Admin' | 'Contributor' | 'Viewer' | 'anonymous' | { header: string };

export interface CallOptions {
  method: string;
  path: string;
  as?: Who;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  params?: Record<string, string>;
  query?: Record<string, string>;
}

export interface CallResult {
  status: number;
  body: any;
  headers: Record<string, string>;
  logs: string[];
}

export function principalHeaders(as: Who = 'Admin'): Record<string, string> {
  if (as === 'anonymous') return {};
  if (typeof as === 'object') return { 'x-ms-client-principal': as.header };
  return { 'x-ms-client-principal': encodePrincipal(as) };
}

/** Calls a handler as the Functions host would, capturing what it logged. */
export async function call(
  handler: (req: HttpRequest, ctx: InvocationContext) => Promise<HttpResponseInit>,
  opts: CallOptions,
): Promise<CallResult> {
  const logs: string[] = [];
  const text = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const request = new HttpRequest({
    method: opts.method,
    url: `http://localhost/api/${opts.path}${opts.query ? `?${new URLSearchParams(opts.query)}` : ''}`,
    query: opts.query ?? {},
    // Writes carry JSON (the API refuses any other Content-Type with 415), with or without a body.
    headers: {
      ...principalHeaders(opts.as),
      ...(text || ['POST', 'PUT', 'PATCH'].includes(opts.method) ? { 'content-type': 'application/json' } : {}),
      ...opts.headers,
    },
    params: opts.params ?? {},
    body: text === undefined ? undefined : { string: text },
  });
  const context = new InvocationContext({
    invocationId: 'test-invocation',
    functionName: 'test',
    logHandler: (level, ...args) => logs.push(`${level} ${args.map(String).join(' ')}`),
  });
  const res = await handler(request, context);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries((res.headers as Record<string, string>) ?? {})) headers[k.toLowerCase()] = String(v);
  return { status: res.status ?? 200, body: res.jsonBody, headers, logs };
}

/**
 * A collection's handlers as small callers, plus the check every rejected write must pass:
 * the stored collection is exactly as it was before.
 */
export function resourceClient(collection: Parameters<typeof call>[0], itemHandler: Parameters<typeof call>[0], path: string) {
  const create = (b: unknown, as: Who = 'Admin') => call(collection, { method: 'POST', path, body: b, as });
  const list = (as: Who = 'Admin') => call(collection, { method: 'GET', path, as });
  const item = (method: string, id: string, opts: { body?: unknown; as?: Who; headers?: Record<string, string> } = {}) =>
    call(itemHandler, { method, path: `${path}/${id}`, params: { id }, ...opts });
  async function expectUnchanged(
    action: () => Promise<{ status: number; body: any }>,
    status: number,
    mentions: string | RegExp,
  ) {
    const before = (await list()).body.value;
    const res = await action();
    expect(res.status).toBe(status);
    expect(JSON.stringify(res.body.error)).toMatch(mentions);
    expect((await list()).body.value).toEqual(before);
    return res;
  }
  return { create, list, item, expectUnchanged };
}
