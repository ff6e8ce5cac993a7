// Table Storage errors → API errors, so repos don't each re-derive what 404/409/412 mean.
import { AppError, conflict, notFound, preconditionFailed } from '../errors';

/** The HTTP status of an Azure SDK error (Tables, Blobs and Queues alike), if it has one. */
export function statusOf(error: unknown): number | undefined {
  return error && typeof error === 'object' && 'statusCode' in error ? (error as { statusCode?: number }).statusCode : undefined;
}

/** Maps the storage status of a failed write/read onto the error the caller should see. */
export function mapTableError(error: unknown, what: string, onConflict?: () => AppError): AppError | unknown {
  const status = statusOf(error);
  if (status === 404) return notFound(what);
  if (status === 412) return preconditionFailed();
  if (status === 409) return onConflict ? onConflict() : conflict(`${what} already exists`);
  return error;
}

/** Transactions report the failing entity's status in the error; single writes in statusCode. */
export async function tableCall<T>(what: string, fn: () => Promise<T>, onConflict?: () => AppError): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw mapTableError(error, what, onConflict);
  }
}
