// POST /api/exports/{id}/preview: a dry run (dry-run.ts) of the newest snapshot against the sync
// state. It answers what the next run would do and what it would cost. A draft (a definition not
// saved) is previewed the same way: against the sync state of the export it edits, or none.
import { randomUUID } from 'node:crypto';
import type { BlobServiceClient } from '@azure/storage-blob';
import { principalOf, requireRole, type Caller } from '../auth';
import type { ConnectionsService } from '../connections/service';
import { RunAborted, type RejectedRow } from '../engine';
import { AppError, conflict, firstLine, tooManyRequests } from '../errors';
import { PREVIEW_LIMITS, takePreviewSlot } from './preview-slots';
import type { ConnectionsRepo } from '../store/connections';
import { CLEANING_UP, type ExportsRepo } from '../store/exports';
import { cleanupPending } from '../exports/cleanup-state';
import type { ExportDefinition } from '../exports/schema';
import { locateSnapshot, SnapshotUnavailable } from '../snapshot/locate';
import { maskText } from './data-points';
import { dryRunExport } from './dry-run';
import { connectionDuration, connectionPace, type DurationEstimate } from './duration-estimate';

const FIRST_REASONS = 10;

export interface PreviewDeps {
  exports: ExportsRepo;
  connectionRecords: ConnectionsRepo;
  connections: ConnectionsService;
  ciBlobs: BlobServiceClient;
  appBlobs: BlobServiceClient;
  bucketTargetBytes?: number;
  /** Stop the dry run after this long (tests; PREVIEW_LIMITS.deadlineMs otherwise). */
  deadlineMs?: number;
}

/** A definition checked as POST /api/exports checks it: one that could be saved. */
export type DraftDefinition = ExportDefinition & { connectionId: string };

export interface Preview {
  /** null for the draft of a new export. */
  exportId: string | null;
  snapshot: { folder: string; modifiedTime: string };
  fullSync: boolean;
  rowsRead: number;
  profiles: { total: number; new: number; changed: number; unchanged: number; leaving: number; rejected: number };
  rejectedRows: { total: number; first: RejectedRow[] };
  requests: number;
  objects: number;
  /** Braze data points the run would consume, by Braze's rules for data-point contracts. */
  dataPoints: number;
  /** On monthly-active-user contracts: profiles this export would create or reach for the first time. */
  newToBraze: { profiles: number; note: string };
  /** At the connection's budget, Braze's reported limit if lower, and its hourly cap (what this hour used counted). */
  estimate: DurationEstimate;
  samples: Record<string, unknown>[];
  omittedAttributes: Record<string, number>;
  warnings: string[];
  previewedBy: string;
  tookSeconds: number;
}

export class ExportPreview {
  /** Exports being previewed on this instance: one at a time each, as a preview costs what reading a snapshot costs. */
  private readonly underWay = new Set<string>();

  constructor(private readonly deps: PreviewDeps) {}

  /** `draft`: preview it instead of the saved definition (`exportId` null: a new export's draft). */
  async preview(caller: Caller, exportId: string | null, fullSync: boolean, draft?: DraftDefinition): Promise<Preview> {
    requireRole(caller, 'Admin', 'Contributor');
    // A new export's draft is no export's preview: it only takes a slot.
    const key = exportId ?? randomUUID();
    if (this.underWay.has(key)) throw conflict('A preview of this export is already running; try again when it has answered');
    const slot = takePreviewSlot();
    if (!slot)
      throw tooManyRequests(
        'This instance is already running as many previews as it takes (a preview costs what reading a snapshot costs); try again shortly',
        PREVIEW_LIMITS.retryAfterSeconds,
      );
    this.underWay.add(key);
    try {
      return await this.dryRun(caller, exportId, fullSync, draft);
    } finally {
      this.underWay.delete(key);
      slot();
    }
  }

  /**
   * What is previewed: the saved export; a draft of it, diffed against its sync state as the run
   * after saving would be; or a new export's draft, under an id no sync state has (a first run). A
   * draft moving the export to another connection (another workspace) is a first run there too.
   */
  private async definitionOf(caller: Caller, exportId: string | null, draft?: DraftDefinition) {
    const firstRun = `draft-${randomUUID()}`;
    if (exportId === null) return { ...draft!, id: firstRun };
    const record = (await this.deps.exports.get(exportId)).value;
    await this.deps.connections.assertMayWorkWith(caller, record.connectionId);
    if (CLEANING_UP.includes(record.status)) throw cleanupPending(record, 'preview');
    if (draft) return { ...draft, id: draft.connectionId === record.connectionId ? record.id : firstRun };
    if (!record.connectionId)
      throw conflict('The export has no connection (detached): attach it to one to preview what it would send');
    return { ...record, connectionId: record.connectionId };
  }

  private async dryRun(caller: Caller, exportId: string | null, fullSync: boolean, draft?: DraftDefinition): Promise<Preview> {
    const { deps } = this;
    const record = await this.definitionOf(caller, exportId, draft);
    const connection = (await deps.connectionRecords.get(record.connectionId)).value;
    const started = Date.now();
    let snapshot;
    try {
      snapshot = await locateSnapshot(deps.ciBlobs, record.source, record.segments);
    } catch (e) {
      if (e instanceof SnapshotUnavailable) throw conflict(`Nothing to preview: ${e.message}`, { reason: e.kind });
      throw e;
    }
    let result;
    try {
      const deadline = started + (deps.deadlineMs ?? PREVIEW_LIMITS.deadlineMs);
      // Past the deadline the engine stops, as a cancelled run does: nothing keeps burning CPU after the answer.
      const pace = await connectionPace(deps.connectionRecords.limits, connection);
      result = await dryRunExport(deps, record, connection.baseUrl, snapshot, fullSync, () => Date.now() > deadline, pace);
    } catch (e) {
      if (e instanceof RunAborted) throw conflict(`The export cannot run: ${firstLine(e)}`);
      throw e;
    }
    if (result.stopped || !result.complete)
      throw new AppError(
        503,
        'preview_deadline',
        `The preview was stopped after ${Math.round((Date.now() - started) / 1000)} s (its deadline, below the HTTP timeout): the snapshot is too large to preview in one request. A run is not limited this way`,
      );
    const { transport } = result;
    const { counts, requests, timings } = result.progress;
    const readingAndDiffSeconds = timings.readingSeconds + timings.sendingSeconds;
    const estimate = await connectionDuration(deps.connectionRecords.limits, connection, requests.sent, readingAndDiffSeconds);
    return {
      exportId,
      snapshot: { folder: snapshot.folder, modifiedTime: snapshot.modifiedTime },
      fullSync,
      rowsRead: counts.rowsRead,
      profiles: {
        total: counts.profiles,
        new: counts.newProfiles,
        changed: counts.sent - counts.newProfiles,
        unchanged: counts.unchanged,
        leaving: counts.removed,
        rejected: counts.rejected,
      },
      // A draft may point the profile ID at any column: its text is masked as the samples are.
      rejectedRows: {
        total: result.rejectedRowsTotal,
        first: result.rejectedRows.slice(0, FIRST_REASONS).map((r) => ({ ...r, profileId: maskText(r.profileId) })),
      },
      requests: requests.sent,
      objects: transport.objects,
      dataPoints: transport.dataPoints,
      newToBraze: {
        profiles: counts.newProfiles,
        note: 'Profiles this export has not sent before: Braze creates them unless it already has a user with the same external_id. On a monthly-active-user contract, new profiles are what can add to the count.',
      },
      estimate,
      samples: transport.samples,
      omittedAttributes: result.progress.omittedAttributes,
      warnings: result.progress.warnings,
      previewedBy: principalOf(caller).name,
      tookSeconds: round((Date.now() - started) / 1000),
    };
  }
}

const round = (n: number) => Math.round(n * 10) / 10;
