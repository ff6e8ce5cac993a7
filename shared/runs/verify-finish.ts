// How a verification run ends once it has compared (whole or by sample): its drift report kept (or
// dropped when there is none), what it found on the run, its summary among the warnings, succeeded.
import type { ContainerClient } from '@azure/storage-blob';
import type { RunRecord } from '../store/runs';
import type { DriftReport } from '../verify/drift-report';
import type { VerifyRecord } from '../verify/record';
import type { Attempt, Finish } from './attempt';
import { runFolder } from './pinned-snapshot';

export async function finishVerified(
  attempt: Attempt,
  finish: Finish,
  report: DriftReport,
  reports: ContainerClient,
  found: Omit<VerifyRecord, 'driftReport' | 'comparedAt'> & { summary: string },
): Promise<void> {
  const driftReport = report.rows > 0 ? await report.upload(reports, runFolder(attempt.run.id)) : null;
  if (!driftReport) await report.discard();
  const verify: VerifyRecord = { ...attempt.run.verify!, comparedAt: new Date().toISOString(), ...found, driftReport };
  const run: RunRecord = { ...attempt.run, verify, warnings: [...(attempt.run.warnings ?? []), found.summary] };
  await finish(attempt.writer, run, 'succeeded', [], null, attempt.log);
}
