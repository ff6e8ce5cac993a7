// Verification and repair as API use cases: POST /api/exports/{id}/verify queues a verification run
// (one run of an export at a time, of any kind); POST /api/runs/{id}/repair marks a verification's
// drift in the sync state and queues the export run that sends exactly it.
import type { ContainerClient } from '@azure/storage-blob';
import { principalOf, requireRole, type Caller } from '../auth';
import type { ConnectionsService } from '../connections/service';
import { definitionFingerprint, SyncStateStore } from '../engine';
import { CONTAINERS, type StorageClients } from '../store/clients';
import { AppError, conflict } from '../errors';
import type { ConnectionsRepo } from '../store/connections';
import type { ExportRecord, ExportsRepo } from '../store/exports';
import type { ExportStateRepo } from '../store/export-state';
import type { RunRecord, RunsRepo } from '../store/runs';
import { activeRunConflict, type QueueOutcome, type RunsService } from '../runs/service';
import { applyRepair, planRepair } from './repair';

/** A verification's sample when the key can read profiles only by id: 0 drift in it bounds drift below 0.15 % at 95 %. */
export const DEFAULT_SAMPLE = 2000;

export interface RepairOutcome {
  /** Profiles the next run sends again (missing, extra, stale) and users whose membership it withdraws (unknown). */
  profiles: number;
  withdrawals: number;
  /** Unknown users Braze knows only by braze_id: an export cannot address them; remove them in Braze. */
  unaddressable: number;
  /** What it costs: /users/track requests of up to 75 objects. */
  requests: number;
  /** The export run that sends them (absent for a dry run). */
  run?: RunRecord;
}

export class VerifyService {
  constructor(
    private readonly runs: RunsService,
    private readonly runsRepo: RunsRepo,
    private readonly exports: ExportsRepo,
    private readonly exportState: ExportStateRepo,
    private readonly connections: ConnectionsService,
    private readonly connectionRecords: ConnectionsRepo,
    private readonly storage: StorageClients,
  ) {
    this.reports = storage.appBlobs.getContainerClient(CONTAINERS.reports);
  }

  private readonly reports: ContainerClient;

  private syncState(exportId: string): SyncStateStore {
    return new SyncStateStore(this.storage.appBlobs.getContainerClient(CONTAINERS.state), exportId);
  }

  /** 409 when an export run ended after the verification compared: its drift may be drift no more. */
  private async assertStateUnmoved(verifyRun: RunRecord): Promise<void> {
    const now = (await this.exportState.get(verifyRun.exportId))?.value.lastRun?.id ?? null;
    const then = verifyRun.verify?.stateRun;
    if (then === undefined || then !== now)
      throw conflict('The export ran since this verification: verify again before repairing', {
        run: { id: now ?? verifyRun.id },
      });
  }

  /** POST /api/exports/{id}/verify: Admin, or Contributor on a shared connection. */
  async verifyNow(caller: Caller, exportId: string, sample?: number): Promise<QueueOutcome> {
    requireRole(caller, 'Admin', 'Contributor');
    const record = (await this.exports.get(exportId)).value;
    await this.connections.assertMayWorkWith(caller, record.connectionId);
    // A sample reads profiles by id (users.export.ids): it needs no proof segment.
    if (sample) return this.runs.start(record, 'manual', principalOf(caller), false, { verify: { sample } });
    // Verification uses what the key can do: without users.export.segment (as its last check found),
    // or without a proof segment, a key with users.export.ids verifies a sample.
    const sampledBecause = await this.sampleInstead(record);
    if (sampledBecause)
      return this.runs.start(record, 'manual', principalOf(caller), false, {
        verify: { sample: DEFAULT_SAMPLE, sampledBecause },
      });
    if (!record.proofSegmentId)
      throw new AppError(
        409,
        'proof_segment_missing',
        "Set the export's proofSegmentId to a Braze segment that filters on its membership attribute (the console shows the filter to create)",
      );
    return this.runs.start(record, 'manual', principalOf(caller), false, {
      verify: { proofSegmentId: record.proofSegmentId },
    });
  }

  /** Why a verification of this export reads a sample instead of the proof segment, or null when it need not. */
  private async sampleInstead(record: ExportRecord): Promise<string | null> {
    if (!record.connectionId) return null;
    const permissions = (await this.connectionRecords.get(record.connectionId)).value.keyCheck?.exportPermissions;
    if (permissions?.['users.export.ids'] !== true) return null;
    if (permissions['users.export.segment'] === false)
      return "the connection's key lacks users.export.segment (its last check): a sample read through users.export.ids";
    if (!record.proofSegmentId) return 'the export has no proofSegmentId: a sample read through users.export.ids';
    return null;
  }

  /**
   * POST /api/runs/{id}/repair: the drift a succeeded verification found is marked in the sync state
   * and an export run queued to send it (409 while another run of the export is active). `dryRun`
   * only says what it would cost.
   */
  async repair(caller: Caller, runId: string, dryRun: boolean): Promise<RepairOutcome> {
    requireRole(caller, 'Admin', 'Contributor');
    const stored = await this.runsRepo.get(runId);
    const verifyRun = stored.value;
    const record = (await this.exports.get(verifyRun.exportId)).value;
    await this.connections.assertMayWorkWith(caller, record.connectionId);
    const report = verifyRun.verify?.driftReport;
    if (verifyRun.kind !== 'verify' || verifyRun.status !== 'succeeded')
      throw conflict('Only a succeeded verification run can be repaired', { run: { id: runId, status: verifyRun.status } });
    if (!report) throw conflict('This verification found no drift: there is nothing to repair');
    if (verifyRun.verify?.repair)
      throw conflict(`Already repaired by run ${verifyRun.verify.repair.runId}`, { run: { id: verifyRun.verify.repair.runId } });
    await this.assertStateUnmoved(verifyRun);
    const state = this.syncState(record.id);
    const manifest = await state.readManifest();
    if (!manifest) throw conflict('The export has no sync state any more: run it instead');
    const connection = (await this.connectionRecords.get(record.connectionId!)).value;
    const definition = definitionFingerprint(record, connection.baseUrl);
    if (manifest.definition !== definition)
      throw conflict("The export's settings changed since the verification: verify again before repairing");
    const [container, ...name] = report.split('/');
    if (container !== this.reports.containerName) throw new Error(`drift report in an unexpected container: ${container}`);
    const plan = await planRepair(this.reports, name.join('/'), manifest.bucketCount);
    const cost = {
      profiles: plan.profiles,
      withdrawals: plan.withdrawals,
      unaddressable: plan.unaddressable,
      requests: Math.ceil((plan.profiles + plan.withdrawals) / 75),
    };
    if (dryRun) return cost;
    const by = principalOf(caller);
    let etag = stored.etag;
    const outcome = await this.runs.start(record, 'manual', by, false, {
      repairOf: runId,
      // Done while the export run holds the export and before it is queued: no other run reads the state
      // meanwhile. The verification is marked first, on the ETag it was read with: one repair of it only.
      before: async (run) => {
        await this.assertStateUnmoved(verifyRun);
        const repair = { runId: run.id, at: new Date().toISOString(), by: by.name, ...cost };
        const marked = await this.runsRepo.updateIfUnchanged({ ...verifyRun, verify: { ...verifyRun.verify!, repair } }, etag);
        if (!marked) throw conflict('This verification was repaired (or changed) meanwhile: reload it');
        etag = marked.etag;
        try {
          await applyRepair(state, plan, definition);
        } catch (e) {
          await this.runsRepo.updateIfUnchanged(verifyRun, etag).catch(() => null);
          throw e;
        }
      },
    });
    if ('active' in outcome) throw activeRunConflict(outcome.active);
    return { ...cost, run: outcome.queued };
  }
}
