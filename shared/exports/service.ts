// Export use cases: role rules (contributors only on shared connections), validation, duplicate/detach.
import { randomUUID } from 'node:crypto';
import { principalOf, requireRole, type Caller, type Principal } from '../auth';
import type { ConnectionsService } from '../connections/service';
import { conflict, preconditionFailed } from '../errors';
import type { Stored } from '../store/connections';
import type { ExportRecord, ExportsRepo } from '../store/exports';
import { parseInput } from '../validation';
import { ExportDefinitionSchema, ExportPatchSchema } from './schema';

export class ExportsService {
  constructor(
    private readonly repo: ExportsRepo,
    private readonly connections: ConnectionsService,
    private readonly runState: {
      /** The last run's summary, and when the timer last looked at the export and what it found. */
      statusOf(exportId: string): Promise<{ lastRun: unknown; lastCheck: unknown }>;
      activeRunOf(exportId: string): Promise<string | null>;
      /** Drops the export's run bookkeeping and sync state once it is deleted. */
      forget(exportId: string): Promise<void>;
      /** Whether Braze may hold the export's membership (it has sync state). */
      hasSyncState(exportId: string): Promise<boolean>;
      /** Queues the run that withdraws the export's membership at its destination, then deletes or detaches it. */
      startCleanup(
        record: ExportRecord,
        caller: Caller,
        then: 'delete' | 'detach',
      ): Promise<{ queued: { id: string; status: string } } | { active: { id: string; status: string } }>;
    },
  ) {}

  /** What GET shows: the definition plus the last run's summary and the timer's last check. */
  async view(record: ExportRecord): Promise<ExportRecord & { lastRun: unknown; lastCheck: unknown }> {
    return { ...record, ...(await this.runState.statusOf(record.id)) };
  }

  async listViews(): Promise<(ExportRecord & { lastRun: unknown; lastCheck: unknown; etag: string })[]> {
    const all = await this.repo.list();
    return Promise.all(all.map(async (e) => ({ ...(await this.view(e.value)), etag: e.etag })));
  }

  get(id: string): Promise<Stored<ExportRecord>> {
    return this.repo.get(id);
  }

  /** Contributors manage exports on shared connections (and detached ones); viewers never write. */
  private assertCanManage(caller: Caller, record: ExportRecord): Promise<void> {
    return this.connections.assertMayWorkWith(caller, record.connectionId);
  }

  async create(caller: Caller, body: unknown): Promise<Stored<ExportRecord>> {
    requireRole(caller, 'Admin', 'Contributor');
    const def = parseInput(ExportDefinitionSchema, body);
    await this.connections.usableBy(caller, def.connectionId);
    const now = new Date().toISOString();
    const record: ExportRecord = {
      id: randomUUID(),
      ...def,
      status: 'active',
      createdAt: now,
      createdBy: caller.name,
      createdByPrincipal: principalOf(caller),
      updatedAt: now,
      updatedBy: caller.name,
      updatedByPrincipal: principalOf(caller),
    };
    return this.repo.create(record);
  }

  async update(caller: Caller, id: string, body: unknown, ifMatch: string | null): Promise<Stored<ExportRecord>> {
    requireRole(caller, 'Admin', 'Contributor');
    const patch = parseInput(ExportPatchSchema, body);
    const current = await this.repo.get(id);
    await this.assertCanManage(caller, current.value);
    const {
      id: _id,
      status,
      createdAt,
      createdBy,
      createdByPrincipal,
      updatedAt: _u,
      updatedBy: _ub,
      updatedByPrincipal: _up,
      ...definition
    } = current.value;
    const merged = parseInput(ExportDefinitionSchema, {
      ...definition,
      connectionId: definition.connectionId ?? undefined,
      ...patch,
    });
    if (patch.connectionId !== undefined || merged.connectionId !== current.value.connectionId) {
      await this.connections.usableBy(caller, merged.connectionId);
    }
    // Another connection may be another Braze workspace: the membership written at the old one
    // must be withdrawn there first, with its key. Detaching does that; then attach the new one.
    if (
      current.value.connectionId &&
      merged.connectionId !== current.value.connectionId &&
      (await this.needsCleanup(current.value))
    ) {
      throw conflict(
        'Moving an export to another connection would leave its segment membership in the old Braze workspace: detach it first (POST …/detach withdraws it there), then set connectionId',
        {
          detach: `/api/exports/${id}/detach`,
        },
      );
    }
    const record: ExportRecord = {
      id,
      ...merged,
      // Giving a detached export a connection makes it active again.
      status: patch.connectionId !== undefined ? 'active' : status,
      createdAt,
      createdBy,
      createdByPrincipal,
      updatedAt: new Date().toISOString(),
      updatedBy: caller.name,
      updatedByPrincipal: principalOf(caller),
    };
    return this.repo.update(record, ifMatch ?? current.etag);
  }

  /**
   * DELETE /api/exports/{id}: when Braze holds the export's membership, a cleanup run withdraws it
   * first (the answer names the run) and deletes the export once it is done; `keepBrazeData` (or
   * an export without a connection, or never run) deletes at once.
   */
  async delete(
    caller: Caller,
    id: string,
    ifMatch: string | null,
    keepBrazeData = false,
  ): Promise<{ deleted: true } | { cleanupRun: { id: string; status: string } }> {
    const current = await this.repo.get(id);
    await this.assertCanManage(caller, current.value);
    const active = await this.runState.activeRunOf(id);
    if (active) throw runGoing(active, 'delete');
    const cleanup = keepBrazeData ? null : await this.cleanupFirst(current, caller, ifMatch, 'delete');
    if (cleanup) return cleanup;
    await this.repo.delete(id, ifMatch ?? current.etag);
    await this.runState.forget(id);
    return { deleted: true };
  }

  /** Deletes an export whose cleanup run finished (no caller: the run was authorised when it started). */
  async deleteAfterCleanup(id: string): Promise<void> {
    const current = await this.repo.get(id).catch(() => null);
    if (current) await this.repo.delete(id, current.etag);
    await this.runState.forget(id);
  }

  private async needsCleanup(record: ExportRecord): Promise<boolean> {
    return record.connectionId !== null && record.status === 'active' && (await this.runState.hasSyncState(record.id));
  }

  /** When Braze holds the export's membership: the cleanup run that withdraws it before the export is let go (null: nothing to withdraw). */
  private async cleanupFirst(
    current: Stored<ExportRecord>,
    caller: Caller,
    ifMatch: string | null,
    then: 'delete' | 'detach',
  ): Promise<{ cleanupRun: { id: string; status: string } } | null> {
    if (!(await this.needsCleanup(current.value))) return null;
    if (ifMatch && ifMatch !== current.etag) throw preconditionFailed();
    const outcome = await this.runState.startCleanup(current.value, caller, then);
    if ('active' in outcome) throw runGoing(outcome.active.id, then);
    return { cleanupRun: outcome.queued };
  }

  /** A copy with its schedule off, so two exports never start sending the same data by surprise. */
  async duplicate(caller: Caller, id: string): Promise<Stored<ExportRecord>> {
    const current = await this.repo.get(id);
    await this.assertCanManage(caller, current.value);
    const now = new Date().toISOString();
    return this.repo.create({
      ...current.value,
      id: randomUUID(),
      name: `${current.value.name} (copy)`.slice(0, 256),
      schedule: { ...current.value.schedule, enabled: false },
      createdAt: now,
      createdBy: caller.name,
      createdByPrincipal: principalOf(caller),
      updatedAt: now,
      updatedBy: caller.name,
      updatedByPrincipal: principalOf(caller),
    });
  }

  /**
   * Keeps the export but cuts it loose from its connection: inactive, unscheduled. When Braze holds
   * its membership, a cleanup run withdraws it first, with the connection's key (which detaching
   * drops), and detaches once it is done; `keepBrazeData` detaches at once.
   */
  async detach(
    caller: Caller,
    id: string,
    ifMatch: string | null,
    keepBrazeData = false,
  ): Promise<Stored<ExportRecord> | { cleanupRun: { id: string; status: string } }> {
    const current = await this.repo.get(id);
    await this.assertCanManage(caller, current.value);
    const cleanup = keepBrazeData ? null : await this.cleanupFirst(current, caller, ifMatch, 'detach');
    return cleanup ?? this.detachNow(current, ifMatch, principalOf(caller));
  }

  /** Detaches an export whose cleanup run finished. */
  async detachAfterCleanup(id: string, by: Principal): Promise<void> {
    const current = await this.repo.get(id);
    await this.detachNow(current, null, by);
    await this.runState.forget(id);
  }

  private detachNow(current: Stored<ExportRecord>, ifMatch: string | null, by: Principal): Promise<Stored<ExportRecord>> {
    return this.repo.update(
      {
        ...current.value,
        connectionId: null,
        status: 'inactive',
        schedule: { ...current.value.schedule, enabled: false },
        updatedAt: new Date().toISOString(),
        updatedBy: by.name,
        updatedByPrincipal: by,
      },
      ifMatch ?? current.etag,
    );
  }
}

/** 409: a run of the export is going, so it cannot be deleted or detached now. */
const runGoing = (runId: string, action: 'delete' | 'detach') =>
  conflict(
    `A run of this export is going; wait for it to finish (or cancel it) before ${action === 'delete' ? 'deleting' : 'detaching'}`,
    { activeRun: { id: runId, location: `/api/runs/${runId}` } },
  );
