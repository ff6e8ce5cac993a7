// A verification by sample (`verify.sample`): random profiles of the sync state read back through
// /users/export/ids, within Braze's limits for it; the outcome says how far it holds for the rest.
import os from 'node:os';
import { rmSync } from 'node:fs';
import type { ContainerClient } from '@azure/storage-blob';
import { createRunTempDir } from '../engine';
import { DriftReport } from '../verify/drift-report';
import { fieldsToExport, unexportableFields } from '../verify/braze-user';
import type { SentSnapshot } from '../verify/sent-snapshot';
import { notesOf } from './verify-notes';
import { verifySample } from '../verify/sample';
import { assertStillOurs, type Attempt, type Finish, type Ready } from './attempt';
import { finishVerified } from './verify-finish';

export async function sampleAttempt(
  attempt: Attempt,
  ready: Ready,
  reports: ContainerClient,
  finish: Finish,
  { stateRun, sent }: { stateRun: string | null; sent: () => Promise<SentSnapshot> },
): Promise<void> {
  const dir = createRunTempDir(os.tmpdir());
  const report = new DriftReport(dir);
  try {
    const started = Date.now();
    const result = await verifySample({
      definition: ready.exportRecord,
      state: ready.state,
      baseUrl: ready.connection.baseUrl,
      apiKey: ready.apiKey,
      fields: fieldsToExport(ready.exportRecord),
      size: attempt.run.verify!.sample!,
      onDrift: (row) => report.add(row),
      shouldStop: ready.shouldStop,
      sent,
      dir,
    });
    // As an export or cleanup attempt: a lost lease (or a run finished by someone else) leaves the run to the worker that has it.
    assertStillOurs(attempt, 'the export was taken over by another worker while the verification sampled');
    if (attempt.writer.cancelRequested) {
      await report.discard();
      const by = attempt.writer.run.cancelRequested?.by ?? 'a user';
      return finish(attempt.writer, attempt.run, 'cancelled', [`Cancelled by ${by} while sampling`], null, attempt.log);
    }
    const { counts, bySegment, sampled, statement, sentValues } = result;
    const unverifiableFields = unexportableFields(ready.exportRecord);
    const notes = { ...(sentValues ? { sentValues } : {}), ...(unverifiableFields.length ? { unverifiableFields } : {}) };
    await finishVerified(attempt, finish, report, reports, {
      stateRun,
      counts,
      bySegment,
      ...notes,
      sampled,
      confidence: statement,
      summary: statement + notesOf(notes),
      timings: { downloadSeconds: 0, compareSeconds: (Date.now() - started) / 1000 },
    });
  } finally {
    // Ended before the folder goes (a no-op once uploaded): a file still opening there would fail.
    await report.discard();
    rmSync(dir, { recursive: true, force: true });
  }
}
