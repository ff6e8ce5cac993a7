// "Is this snapshot already in Braze?" — one answer for the timer (should it queue a run?) and the
// worker (may a run skip reading and sending?), so the two never disagree.
import type { ExportState, ExportStateRepo } from '../store/export-state';
import type { RunRecord, RunsRepo } from '../store/runs';

export type ExportVerdict =
  /** Same snapshot (by content) and same settings as the last run, which delivered everything. */
  | 'exported'
  /** As 'exported', but Braze refused some profiles last time: worth one more try. */
  | 'refused-last-time'
  /** A new snapshot, changed settings (mapping, segments, membership, destination), or no clean run yet. */
  | 'changed';

export function exportVerdict(
  state: ExportState | null | undefined,
  snapshotId: string,
  definition: string | null,
): ExportVerdict {
  const last = state?.lastRun;
  if (
    !state ||
    !last ||
    last.status !== 'succeeded' ||
    state.lastSnapshotId !== snapshotId ||
    !definition ||
    state.lastDefinition !== definition
  )
    return 'changed';
  // Rows written before refusals were kept count as refused: one more run costs little and settles it.
  return (last.brazeRefusals ?? 1) > 0 ? 'refused-last-time' : 'exported';
}

/**
 * The run, finished without reading or sending, when the last run fully exported the same snapshot
 * with the same settings (the diff is empty by construction); null when it must do the work.
 */
export async function unchangedSinceLastRun(
  deps: { state: ExportStateRepo; runs: RunsRepo },
  run: RunRecord,
  snapshotId: string,
  definition: string,
): Promise<RunRecord | null> {
  const state = (await deps.state.get(run.exportId))?.value;
  // Profiles Braze refused last time are worth another try: only a clean run allows the shortcut.
  if (exportVerdict(state, snapshotId, definition) !== 'exported') return null;
  const last = state!.lastRun!;
  const previous = await deps.runs.get(last.id).then(
    (r) => r.value,
    () => null,
  );
  if (!previous?.counts) return null;
  const c = previous.counts;
  return {
    ...run,
    counts: { ...c, unchanged: c.sent + c.unchanged, sent: 0, removed: 0, failed: 0, removalsFailed: 0, newProfiles: 0 },
    requests: { sent: 0, retried: 0, rateLimited: 0 },
    segments: previous.segments,
    omittedAttributes: previous.omittedAttributes,
    rejectedReport: previous.rejectedReport,
    warnings: [`Snapshot unchanged since run ${previous.id}: nothing was read or sent (use fullSync to resend everything)`],
  };
}
