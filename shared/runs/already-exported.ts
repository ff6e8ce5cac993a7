// "Is this snapshot already in Braze?" — one answer for the timer (should it queue a run?) and the
// worker (may a run skip reading and sending?), so the two never disagree.
import type { ExportState } from '../store/export-state';

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
