// What a request to start a run says beyond who asks and which export (RunsService.start), and
// whether the export may run at all.
import { AppError } from '../errors';
import { cleanupPending } from '../exports/cleanup-state';
import { CLEANING_UP, type ExportRecord } from '../store/exports';
import type { RunRecord } from '../store/runs';

export interface StartOptions {
  /** A cleanup run: withdraw the export's membership, then delete or detach it. */
  cleanup?: RunRecord['then'];
  /** Runs once the run holds the export, before it is queued (marks the export); a throw undoes the run. */
  before?: (run: RunRecord) => Promise<void>;
  /** false: the caller finishes the claimed run itself (nothing to send). */
  queue?: boolean;
  /** A cleanup run that withdraws nothing (kept in Braze, or never sent). */
  keepBrazeData?: boolean;
  /** Starts even though the export is `deleting` / `detaching` (its restore). */
  restoring?: boolean;
  /** Approved up front: the export's guard does not hold it. */
  approved?: RunRecord['approved'];
  /** A verification run: reads Braze back and compares (sends nothing). */
  verify?: RunRecord['verify'];
  /** An export run that sends the drift a verification run found (it never takes the "already exported" shortcut). */
  repairOf?: string;
}

/** 409 unless the export may run: attached, and not waiting for its cleanup (except the cleanup itself, or a restore). */
export function refuseUnlessRunnable(record: ExportRecord, options: StartOptions): void {
  if (CLEANING_UP.includes(record.status) && !options.cleanup && !options.restoring) throw cleanupPending(record, 'run');
  if (!record.connectionId || record.status === 'inactive') {
    throw new AppError(
      409,
      'export_inactive',
      'This export is detached from its connection; attach a connection before running it',
    );
  }
}
