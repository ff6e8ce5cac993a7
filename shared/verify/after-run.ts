// The export setting `verifyAfterRun`: every export run that delivered is followed by a verification
// of what Braze holds (queued like any run; one run of the export at a time, so it starts once the
// export run has let go of the export).
import type { RunsService } from '../runs/service';
import type { ExportsRepo } from '../store/exports';
import type { RunRecord } from '../store/runs';

export async function verifyAfterRun(
  deps: { exports: ExportsRepo; runsService: RunsService },
  run: RunRecord,
  log: (line: string) => void,
): Promise<void> {
  const record = (await deps.exports.get(run.exportId).catch(() => null))?.value;
  if (!record?.verifyAfterRun || !record.proofSegmentId) return;
  try {
    const outcome = await deps.runsService.start(record, 'schedule', 'after its run', false, {
      verify: { proofSegmentId: record.proofSegmentId },
    });
    if ('queued' in outcome) log(`run ${run.id} export ${run.exportId}: verification ${outcome.queued.id} queued after it`);
  } catch (e) {
    // The run's own outcome stands; the verification can be asked for by hand.
    log(`run ${run.id} export ${run.exportId}: could not queue the verification after it: ${(e as Error).message}`);
  }
}
