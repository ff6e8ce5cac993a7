// What an export waiting for its cleanup (`deleting` / `detaching`) tells the caller that tries to
// use it: the 409 naming the reason, the cleanup run and the two ways out (retry, restore).
import { AppError } from '../errors';
import type { ExportRecord } from '../store/exports';

/** Where the ways out of a failed or cancelled cleanup are. */
export const cleanupRoutes = (exportId: string) => ({
  retry: `/api/exports/${exportId}/retry-cleanup`,
  restore: `/api/exports/${exportId}/restore`,
});

const VERBS = { run: 'run', preview: 'be previewed', change: 'be changed' } as const;

/** 409: the export is `deleting` / `detaching`; runs, previews and edits wait until its cleanup is over. */
export function cleanupPending(record: Pick<ExportRecord, 'id' | 'status' | 'cleanup'>, what: keyof typeof VERBS): AppError {
  const doing = record.status === 'deleting' ? 'being deleted' : 'being detached';
  const runId = record.cleanup?.runId ?? null;
  return new AppError(
    409,
    'export_cleanup_pending',
    `This export is ${doing}: its cleanup run withdraws its segment membership from Braze first, so it cannot ${VERBS[what]} now. ` +
      'Wait for the cleanup to finish; if it failed or was cancelled, retry it (POST …/retry-cleanup) or restore the export (POST …/restore, which queues a full sync)',
    undefined,
    {
      status: record.status,
      cleanupRun: runId ? { id: runId, location: `/api/runs/${runId}` } : null,
      ...cleanupRoutes(record.id),
    },
  );
}
