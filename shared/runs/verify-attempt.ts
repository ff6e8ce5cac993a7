// A verification run's attempt: ask Braze for the proof segment's users (once per run, remembered on
// the run row), wait for the files (polled, bounded; the run goes back on the queue between looks),
// then stream them and compare with the export's sync state. It writes nothing to Braze or to the
// state; a killed attempt is simply done again (the files stay where Braze put them).
import os from 'node:os';
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import type { ExportDefinition } from '../exports/schema';
import { BrazeExportRefused, requestSegmentExport } from '../braze/user-export';
import { createRunTempDir, definitionFingerprint, RunAborted, RunStopped } from '../engine';
import { CONTAINERS } from '../store/clients';
import type { ConnectionRecord } from '../store/connections';
import type { ExportStateRepo } from '../store/export-state';
import type { RunRecord } from '../store/runs';
import { fieldsToExport, unexportableFields } from '../verify/braze-user';
import { sentSnapshot } from '../verify/sent-snapshot';
import { compareWithState } from '../verify/compare';
import { DriftReport } from '../verify/drift-report';
import { downloadCap } from '../verify/download-url';
import { savedUrl, saveUrl } from '../verify/saved-url';
import { downloadFromContainer, downloadWhenReady, type Downloaded, type Waiting } from '../verify/export-files';
import { assertStillOurs, type Attempt, type Finish, type Ready } from './attempt';
import { sampleAttempt } from './verify-sample-attempt';
import { finishVerified } from './verify-finish';
import { summaryOf } from './verify-notes';
import { thousands } from '../thousands';

export interface VerifyTiming {
  /** Between looks at Braze's URL or container (default 15 s). */
  pollMs?: number;
  /** How long Braze may take to make the export before the run fails (default 2 h). */
  maxWaitMs?: number;
  /** http hosts allowed for Braze's export URL (loopback only: the local-only LOCAL_EXTRA_BRAZE_HOSTS). */
  extraBrazeHosts?: readonly string[];
  /** Most bytes of Braze's files downloaded (default: what the temp disk can take). */
  maxDownloadBytes?: number;
  /** Container delivery: how long the listing must stay unchanged before it is taken as complete (default 2 min). */
  stableListingMs?: number;
}

/** Braze's export is taken as incomplete (the run fails) below this share of the profiles sent, from this many on. */
const INCOMPLETE_SHARE = 0.5;
const INCOMPLETE_MIN = 10;

export interface VerifyDeps {
  appBlobs: BlobServiceClient;
  ciBlobs: BlobServiceClient;
  /** A Blob service at another account's URL, reached with the app's identity. */
  blobsAt: (accountUrl: string) => BlobServiceClient;
  /** The export's state row: which export run the sync state is as of when compared. */
  state: Pick<ExportStateRepo, 'get'>;
  timeBudgetMs: number;
  timing?: VerifyTiming;
}

export class VerifyAttempts {
  constructor(
    private readonly deps: VerifyDeps,
    private readonly finish: Finish,
  ) {}

  private get pollMs() {
    return this.deps.timing?.pollMs ?? 15_000;
  }

  /** The export run the sync state is as of: the export is held by this run, so none moves it meanwhile. */
  private async stateRunOf(exportId: string): Promise<string | null> {
    return (await this.deps.state.get(exportId))?.value.lastRun?.id ?? null;
  }

  private get maxWaitMs() {
    return this.deps.timing?.maxWaitMs ?? 2 * 60 * 60 * 1000;
  }

  private containerOf(connection: ConnectionRecord): ContainerClient | null {
    const c = connection.exportContainer;
    if (!c) return null;
    return (c.accountUrl ? this.deps.blobsAt(c.accountUrl) : this.deps.ciBlobs).getContainerClient(c.container);
  }

  private get reports() {
    return this.deps.appBlobs.getContainerClient(CONTAINERS.reports);
  }

  async run(attempt: Attempt, ready: Ready): Promise<void> {
    const def = ready.exportRecord;
    const manifest = await ready.state.readManifest();
    if (!manifest) throw new RunAborted('Nothing to verify: the export has not sent anything to Braze yet; run it first');
    if (manifest.definition !== definitionFingerprint(def, ready.connection.baseUrl))
      throw new RunAborted("The export's settings changed since its last run: run the export first, then verify");
    if (attempt.run.verify?.sample) {
      const stateRun = await this.stateRunOf(attempt.run.exportId);
      return sampleAttempt(attempt, ready, this.reports, this.finish, { stateRun, sent: () => this.sent(def, stateRun) });
    }
    const segmentId = attempt.run.verify?.proofSegmentId ?? def.proofSegmentId;
    if (!segmentId)
      throw new RunAborted('The export has no proofSegmentId: create the Braze segment the console describes and set it');
    const container = this.containerOf(ready.connection);
    if (!attempt.run.verify?.objectPrefix && !(await this.request(attempt, ready, def, segmentId, container))) return;
    const dir = createRunTempDir(os.tmpdir());
    try {
      const files = await this.download(attempt, ready, segmentId, container, dir);
      if (files) await this.compare(attempt, ready, files, dir);
      else if (attempt.writer.cancelRequested) {
        const by = attempt.writer.run.cancelRequested?.by ?? 'a user';
        await this.finish(
          attempt.writer,
          attempt.run,
          'cancelled',
          [`Cancelled by ${by} while Braze made the export`],
          null,
          attempt.log,
        );
      }
    } finally {
      // Braze's signed URL (saved-url.ts) is deleted when the run ends, by RunsService.finish.
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Asks Braze for the export once; false when the run must wait (another export of the segment is going). */
  private async request(
    attempt: Attempt,
    ready: Ready,
    def: ExportDefinition,
    segmentId: string,
    container: ContainerClient | null,
  ): Promise<boolean> {
    let answer;
    try {
      answer = await requestSegmentExport(ready.connection.baseUrl, ready.apiKey, {
        segment_id: segmentId,
        fields_to_export: fieldsToExport(def),
        output_format: container ? 'gzip' : 'zip',
      });
    } catch (e) {
      if (!(e instanceof BrazeExportRefused)) throw e;
      const waited = Date.now() - Date.parse(attempt.run.startedAt ?? attempt.run.queuedAt);
      if (!e.retryable || waited > this.maxWaitMs) throw new RunAborted(e.message);
      await this.later(attempt, `${e.message}; asking again in ${Math.round(this.pollMs / 1000)} s`);
      return false;
    }
    // The URL grants access to the users' data: kept in the app's own storage, never on the run row.
    await saveUrl(this.reports, attempt.run.id, answer.url);
    const verify: RunRecord['verify'] = {
      proofSegmentId: segmentId,
      delivery: answer.url ? 'url' : 'container',
      objectPrefix: answer.objectPrefix,
      requestedAt: new Date().toISOString(),
    };
    attempt.run = { ...attempt.run, verify, heartbeatAt: new Date().toISOString() };
    await attempt.writer.write(attempt.run);
    if (!answer.url && !container)
      throw new RunAborted(
        "Braze wrote the export to the workspace's cloud storage (its answer had no URL), but the connection names no exportContainer to read it from",
      );
    return true;
  }

  /** Braze's files in the temp folder, or null when they are not ready yet (the run waits, or fails past its bound). */
  private async download(
    attempt: Attempt,
    ready: Ready,
    segmentId: string,
    container: ContainerClient | null,
    dir: string,
  ): Promise<Downloaded | null> {
    const v = attempt.run.verify!;
    const deadline = Date.parse(v.requestedAt!) + this.maxWaitMs;
    const w: Waiting = {
      pollMs: this.pollMs,
      until: Math.min(deadline, attempt.started + this.deps.timeBudgetMs),
      shouldStop: ready.shouldStop,
      stableMs: this.deps.timing?.stableListingMs,
    };
    let files: Downloaded | null;
    if (v.delivery === 'url') {
      const url = await savedUrl(this.reports, attempt.run.id);
      const file = path.join(dir, 'export-0');
      files = await downloadWhenReady(url, file, w, {
        extraHosts: this.deps.timing?.extraBrazeHosts,
        maxBytes: downloadCap(dir, this.deps.timing?.maxDownloadBytes),
      });
    } else {
      if (!container) throw new RunAborted("The connection's exportContainer was removed while Braze was exporting to it");
      // The window the listing must stay unchanged goes on from where the last attempt left it.
      if (v.listing) w.listing = { digest: v.listing.digest, since: Date.parse(v.listing.unchangedSince) };
      files = await downloadFromContainer(container, segmentId, v.objectPrefix!, dir, w);
      const listing = w.listing && { digest: w.listing.digest, unchangedSince: new Date(w.listing.since).toISOString() };
      if (!files && listing) attempt.run = { ...attempt.run, verify: { ...v, listing } };
    }
    if (files || ready.shouldStop()) return files;
    if (Date.now() + this.pollMs >= deadline) {
      const minutes = Math.round(this.maxWaitMs / 60_000);
      throw new RunAborted(
        `Braze's export of segment ${segmentId} (object_prefix ${v.objectPrefix}) was not ready after ${minutes} minutes; ` +
          "Braze e-mails a failed export to the workspace's admins. Verify again later",
      );
    }
    await this.later(attempt, `waiting for Braze's export of segment ${segmentId}`);
    return null;
  }

  /** The snapshot the sync state was built from: what the export's last run pinned. */
  private sent(def: ExportDefinition, stateRun: string | null) {
    return sentSnapshot(this.deps, def, stateRun);
  }

  /**
   * Whether the attempt may go on comparing, as an export or cleanup attempt learns it: its export's
   * lease lost, or the run finished by someone else, throws StateTakenOver (the run is another
   * worker's now: nothing more is written); a cancel request (seen by the heartbeat's write) throws
   * RunStopped. Asked between buckets and before the outcome is written.
   */
  private alive(attempt: Attempt): void {
    assertStillOurs(attempt, 'the export was taken over by another worker while the verification compared');
    if (attempt.writer.cancelRequested) throw new RunStopped('cancel requested');
  }

  private async compare(attempt: Attempt, ready: Ready, downloaded: Downloaded, dir: string): Promise<void> {
    const started = Date.now();
    const stateRun = await this.stateRunOf(attempt.run.exportId);
    const report = new DriftReport(dir);
    let compared;
    try {
      compared = await this.compareAll(attempt, ready, downloaded, dir, report, stateRun);
      // The lease renewed now (it throws StateTakenOver once lost), and a cancel that came while the last bucket was compared.
      await ready.beforeCheckpoint();
      this.alive(attempt);
    } catch (e) {
      await report.discard();
      if (!(e instanceof RunStopped)) throw e;
      const by = attempt.writer.run.cancelRequested?.by ?? 'a user';
      const why = `Cancelled by ${by} while comparing Braze's export with what the export sent; nothing was reported`;
      return this.finish(attempt.writer, attempt.run, 'cancelled', [why], null, attempt.log);
    }
    const { counts, bySegment, sentValues } = compared;
    const timings = { downloadSeconds: downloaded.seconds, compareSeconds: (Date.now() - started) / 1000 };
    const unverifiableFields = unexportableFields(ready.exportRecord);
    await finishVerified(attempt, this.finish, report, this.reports, {
      stateRun,
      counts,
      bySegment,
      ...(sentValues ? { sentValues } : {}),
      ...(unverifiableFields.length ? { unverifiableFields } : {}),
      summary: summaryOf(counts, { sentValues, unverifiableFields }),
      timings,
    });
  }

  private compareAll(
    attempt: Attempt,
    ready: Ready,
    downloaded: Downloaded,
    dir: string,
    report: DriftReport,
    stateRun: string | null,
  ) {
    return compareWithState({
      definition: ready.exportRecord,
      state: ready.state,
      files: downloaded.files,
      dir,
      onDrift: (row) => report.add(row),
      checkSpread: (c) => {
        if (c.inState >= INCOMPLETE_MIN && c.inBraze < c.inState * INCOMPLETE_SHARE)
          throw new RunAborted(
            `Braze's export looks incomplete: it holds ${thousands(c.inBraze)} users for the ${thousands(c.inState)} profiles the export sent, ` +
              'so nothing is reported or repairable. Verify again later; if those users were deleted in Braze, run the export with fullSync',
          );
      },
      sent: () => this.sent(ready.exportRecord, stateRun),
      checkpoint: () => this.alive(attempt),
    });
  }

  /** Back on the queue after a poll interval: Braze is still making the export (or another one of the segment). */
  private async later(attempt: Attempt, why: string): Promise<void> {
    attempt.run = {
      ...attempt.run,
      heartbeatAt: new Date().toISOString(),
      continuations: (attempt.run.continuations ?? 0) + 1,
    };
    await attempt.writer.write(attempt.run);
    attempt.requeueIn = Math.max(1, Math.round(this.pollMs / 1000));
    attempt.log(`run ${attempt.run.id} export ${attempt.run.exportId}: ${why}; looking again in ${attempt.requeueIn} s`);
  }
}
