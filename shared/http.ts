// The HTTP edge shared by every function: identity, JSON bodies, and errors → responses.
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { BlobServiceClient } from '@azure/storage-blob';
import { authenticate, type Caller } from './auth';
import { AppError, badRequest, fieldError, notFound, payloadTooLarge, unsupportedMediaType } from './errors';
import { services, type Services } from './services';
import { HSTS } from './console/assets';
import { requireLoopback } from './loopback';
import { splitRunId } from './store/runs';

export const MAX_BODY_BYTES = 256 * 1024;

export interface ApiCall {
  request: HttpRequest;
  context: InvocationContext;
  caller: Caller;
  app: Services;
}

export type ApiHandler = (call: ApiCall) => Promise<HttpResponseInit>;

/** Every API answer: never cached, never sniffed as something else, HTTPS only. */
export const API_HEADERS = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...HSTS };

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, jsonBody: body, headers: { ...API_HEADERS, ...headers } };
}

/** A stored resource with its ETag in the header and the body. */
export function withEtag<T extends object>(
  status: number,
  view: T,
  etag: string,
  headers: Record<string, string> = {},
): HttpResponseInit {
  return json(status, { ...view, etag }, { ETag: etag, ...headers });
}

/** A CSV report the app keeps in its own blobs ("container/name"), sent as a download. */
export async function csvDownload(appBlobs: BlobServiceClient, report: string, filename: string): Promise<HttpResponseInit> {
  const [container, ...name] = report.split('/');
  const body = await appBlobs.getContainerClient(container!).getBlobClient(name.join('/')).downloadToBuffer();
  return {
    status: 200,
    body,
    headers: {
      ...API_HEADERS,
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="${filename}"`,
    },
  };
}

export function errorResponse(error: AppError): HttpResponseInit {
  return json(
    error.status,
    {
      error: {
        code: error.code,
        message: error.message,
        ...(error.issues ? { issues: error.issues } : {}),
        ...(error.details ?? {}),
      },
    },
    error.headers,
  );
}

/** Methods a cross-site HTML form can send with a body: they must say they carry JSON (which a form cannot). */
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** 415 unless a write declares `Content-Type: application/json` (parameters such as charset allowed). */
export function requireJsonContentType(request: HttpRequest): void {
  if (!WRITE_METHODS.has(request.method.toUpperCase())) return;
  const mediaType = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType !== 'application/json') throw unsupportedMediaType();
}

/** Reads a JSON object body, refusing oversized or malformed input with a clear 4xx. */
export async function readJson(request: HttpRequest): Promise<unknown> {
  const value = await readOptionalJson(request);
  if (value === undefined)
    throw badRequest('Request body is empty: send a JSON object', [{ path: '(body)', message: 'is required' }]);
  return value;
}

/**
 * A JSON object body, or undefined when there is none. The body is read whatever Content-Length
 * says (a chunked request has none).
 */
export async function readOptionalJson(request: HttpRequest): Promise<unknown> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) throw payloadTooLarge(MAX_BODY_BYTES);
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw payloadTooLarge(MAX_BODY_BYTES);
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw badRequest(`Request body is not valid JSON (${(e as Error).message})`, [
      { path: '(body)', message: 'is not valid JSON' },
    ]);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest('Request body must be a JSON object', [{ path: '(body)', message: 'must be a JSON object' }]);
  }
  return value;
}

/** 202 for a DELETE or detach that waits for its cleanup run. */
export const cleanupAccepted = (run: { id: string; status: string }, what: 'deleted' | 'detached' | 'let go') =>
  json(
    202,
    {
      cleanupRun: { id: run.id, status: run.status, location: `/api/runs/${run.id}` },
      message: `The export's segment membership is being withdrawn from Braze; the export is ${what} when that run succeeds`,
    },
    { Location: `/api/runs/${run.id}` },
  );

/** `?keepBrazeData=true|false` (absent: false); any other value is a 400, never a silent cleanup. */
export function keepBrazeDataOf(request: HttpRequest): boolean {
  const value = request.query.get('keepBrazeData');
  if (value === null || value === 'false') return false;
  if (value === 'true') return true;
  throw fieldError('keepBrazeData', 'must be true or false');
}

export const ifMatch = (request: HttpRequest) => {
  const v = request.headers.get('if-match');
  return v && v !== '*' ? v : null;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Ids in the path are checked at the edge: exports and connections are UUIDs, runs
 * `<exportId>.<rowKey>`; anything else is a 404 before it reaches storage (which refuses some keys
 * Azurite takes, and a `/` would address another route).
 */
export function checkPathIds(request: HttpRequest): void {
  const { id, runId } = request.params;
  if (id !== undefined && !UUID.test(id))
    throw notFound(new URL(request.url).pathname.includes('/connections/') ? 'Connection' : 'Export');
  if (runId !== undefined && !splitRunId(runId)) throw notFound('Run');
}

/** Wraps a handler: authenticates the caller, maps errors; unexpected ones become a 500 with an id, never a stack. */
export function api(handler: ApiHandler) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const app = services();
      // Local-only trust settings answer loopback requests only, whichever host serves the function.
      if (app.config.anonymousAdmin || app.config.trustPrincipalHeaderLocally) requireLoopback(request);
      const caller = authenticate(request.headers, app.config);
      checkPathIds(request);
      requireJsonContentType(request);
      await app.ready;
      return await handler({ request, context, caller, app });
    } catch (error) {
      if (error instanceof AppError) return errorResponse(error);
      context.error(`Unhandled error in ${context.functionName}: ${(error as Error)?.name}: ${(error as Error)?.message}`);
      return json(500, {
        error: { code: 'internal_error', message: `Something went wrong; quote invocation ${context.invocationId} to support` },
      });
    }
  };
}
