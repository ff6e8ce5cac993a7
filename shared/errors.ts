// Errors the API maps to HTTP statuses. Messages are written for the caller: no stack, no secret.
import type { z } from 'zod';

export interface FieldIssue {
  path: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues?: FieldIssue[],
    readonly details?: Record<string, unknown>,
    /** Response headers the error brings (Retry-After on a 429). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const badRequest = (message: string, issues?: FieldIssue[]) => new AppError(400, 'bad_request', message, issues);
export const unauthorized = (message: string) => new AppError(401, 'unauthorized', message);
export const forbidden = (message: string) => new AppError(403, 'forbidden', message);
export const notFound = (what: string) => new AppError(404, 'not_found', `${what} was not found`);
export const conflict = (message: string, details?: Record<string, unknown>) =>
  new AppError(409, 'conflict', message, undefined, details);
export const preconditionFailed = () =>
  new AppError(
    412,
    'precondition_failed',
    'The resource was changed by someone else (If-Match does not match its ETag); read it again and retry',
  );
export const tooManyRequests = (message: string, retryAfterSeconds: number) =>
  new AppError(429, 'too_many_requests', message, undefined, { retryAfterSeconds }, { 'Retry-After': String(retryAfterSeconds) });
export const payloadTooLarge = (limit: number) =>
  new AppError(413, 'payload_too_large', `The request body is larger than ${limit} bytes`);

export const unsupportedMediaType = () =>
  new AppError(
    415,
    'unsupported_media_type',
    'Writes need Content-Type: application/json (the body, if any, must be a JSON object)',
  );

/** An error's message on one line, cut to `max` characters: for a detail field, a state row or a log line. */
export const firstLine = (e: unknown, max = 300) =>
  String((e as Error)?.message ?? e)
    .split('\n')[0]!
    .slice(0, max);

/** A single-field 400, shaped like zod's issues so clients handle one format. */
export const fieldError = (path: string, message: string) =>
  badRequest(`Invalid request: ${path} ${message}`, [{ path, message }]);

export function fromZodError(error: z.ZodError, prefix = ''): AppError {
  const join = (path: PropertyKey[]) => [prefix, ...path.map(String)].filter(Boolean).join('.') || '(body)';
  const issues = error.issues.flatMap((i) =>
    // Name each unknown field itself, so the client sees which one to drop.
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => ({ path: join([...i.path, k]), message: 'is not a known field' }))
      : [{ path: join(i.path), message: i.message }],
  );
  const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  return badRequest(`Invalid request: ${summary}`, issues);
}
