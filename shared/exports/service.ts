// Export use cases: role rules (contributors only on shared connections), validation, duplicate/detach.
import { randomUUID } from 'node:crypto';
import { principalOf, requireRole, type Caller } from '../auth';
import type { ConnectionsService } from '../connections/service';
import { conflict, forbidden, preconditionFailed } from '../errors';
import type { Stored } from '../store/connections';
import { CLEANING_UP, type ExportRecord, type ExportsRepo } from '../store/exports';
import type { RunRecord } from '../store/runs';
import { cleanupView, ExportCleanups, type CleanupRunState, type CleanupStarted } from './cleanup';
import { cleanupPending } from './cleanup-state';
import { parseInput } from '../validation';
import { ExportDefinitionSchema, ExportPatchSchema, type ExportDefinition } from './schema';

/**
 * The guard decides what runs unattended and who may approve past it: only an Admin sets it (a
 * Contributor could otherwise switch it off, or let themselves approve).
 */
function assertMaySetGuard(caller: Caller, body: unknown, prefix = ''): void {
  if (caller.role !== 'Admin' && body !== null && typeof body === 'object' && 'guard' in body)
    throw forbidden(`${[prefix, 'guard'].filter(Boolean).join('.')}: only an Admin may set an export's guard`);
}

export class ExportsService {
  private readonly cleanups: ExportCleanups;

  constructor(
    private readonly repo: ExportsRepo,
    private readonly connections: ConnectionsService,
    private readonly runState: CleanupRunState & {
      /** The last run's summary, and when the timer last looked at the export and what it found. */
      statusOf(exportId: string): Promise<{ lastRun: unknown; lastCheck: unknown; lastVerify?: unknown }>;
    },
  ) {
    this.cleanups = new ExportCleanups(repo, runState);
  }

  /** What GET shows: the definition plus the last run's summary and the timer's last check. */
  async view(record: ExportRecord): Promise<ExportRecord & { lastRun: unknown; lastCheck: unknown }> {
    const cleanup = await cleanupView(record, (id) => this.runState.runStatusOf(id));
    return { ...record, ...(await this.runState.statusOf(record.id)), ...(cleanup ? { cleanup } : {}) };
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

  /**
   * A new export's definition as POST /api/exports takes it — the role, the guard rule, the schema
   * and a connection the caller may use — also what a draft preview runs on. `prefix` names where
   * the definition sits in the body, for the 400's field paths.
   */
  async checkedDefinition(caller: Caller, body: unknown, prefix = ''): Promise<ExportDefinition & { connectionId: string }> {
    requireRole(caller, 'Admin', 'Contributor');
    assertMaySetGuard(caller, body, prefix);
    const def = parseInput(ExportDefinitionSchema, body, prefix);
    await this.connections.usableBy(caller, def.connectionId, [prefix, 'connectionId'].filter(Boolean).join('.'));
    return def;
  }

  /**
   * An edit of export `id` to preview before it is saved (`definition` in the preview's body): the
   * export must exist and be the caller's to manage (404, 403) before the draft is looked at, and,
   * with `ifMatch`, still be the version the edit started from (412 when it has changed since).
   */
  async checkedEdit(
    caller: Caller,
    id: string,
    body: unknown,
    ifMatch: string | null,
  ): Promise<ExportDefinition & { connectionId: string }> {
    requireRole(caller, 'Admin', 'Contributor');
    const current = await this.repo.get(id);
    await this.assertCanManage(caller, current.value);
    if (ifMatch && ifMatch !== current.etag) throw preconditionFailed();
    return this.checkedDefinition(caller, body, 'definition');
  }

  async create(caller: Caller, body: unknown): Promise<Stored<ExportRecord>> {
    const def = await this.checkedDefinition(caller, body);
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
    assertMaySetGuard(caller, body);
    const patch = parseInput(ExportPatchSchema, body);
    const current = await this.repo.get(id);
    await this.assertCanManage(caller, current.value);
    if (CLEANING_UP.includes(current.value.status)) throw cleanupPending(current.value, 'change');
    const {
      id: _id,
      status,
      cleanup: _cleanup,
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
   * first (the answer names the run; the export is `deleting` meanwhile) and deletes the export once
   * it has succeeded; `keepBrazeData` (or an export without a connection, or never run) deletes at
   * once. On a `deleting` / `detaching` export whose cleanup failed, DELETE retries it.
   */
  async delete(
    caller: Caller,
    id: string,
    ifMatch: string | null,
    keepBrazeData = false,
  ): Promise<{ deleted: true } | { cleanupRun: { id: string; status: string } }> {
    const current = await this.repo.get(id);
    await this.assertCanManage(caller, current.value);
    if (!current.value.connectionId) {
      // Detached: no run can start (and re-attaching changes the ETag this delete is conditional on).
      await this.repo.delete(id, ifMatch ?? current.etag);
      await this.runState.forget(id);
      return { deleted: true };
    }
    const started = await this.cleanups.begin(current, caller, ifMatch, 'delete', keepBrazeData);
    return 'cleanupRun' in started ? started : { deleted: true };
  }

  private async needsCleanup(record: ExportRecord): Promise<boolean> {
    return record.connectionId !== null && record.status === 'active' && (await this.runState.hasSyncState(record.id));
  }

  /** The last step of a succeeded cleanup (delete or detach), by whoever sees it first; idempotent. */
  completeCleanup(id: string, runId?: string): Promise<boolean> {
    return this.cleanups.complete(id, runId);
  }

  /** POST /api/exports/{id}/retry-cleanup: runs a failed or cancelled cleanup again. */
  async retryCleanup(caller: Caller, id: string, ifMatch: string | null): Promise<CleanupOutcome> {
    const current = await this.repo.get(id);
    await this.assertCanManage(caller, current.value);
    return this.outcomeOf(id, await this.cleanups.retry(current, caller, ifMatch));
  }

  /** POST /api/exports/{id}/restore: back to `active` after a failed or cancelled cleanup; a full sync is queued. */
  async restore(
    caller: Caller,
    id: string,
    ifMatch: string | null,
  ): Promise<{ export: Stored<ExportRecord>; fullSyncRun: RunRecord }> {
    const current = await this.repo.get(id);
    await this.assertCanManage(caller, current.value);
    const outcome = await this.cleanups.restore(current, caller, ifMatch);
    if (!('queued' in outcome)) throw new Error('restore: a run was already active');
    return { export: await this.repo.get(id), fullSyncRun: outcome.queued };
  }

  /** What a cleanup started or finished leaves: the run that works, or the export as it is now (gone: null). */
  private async outcomeOf(id: string, started: CleanupStarted): Promise<CleanupOutcome> {
    if ('cleanupRun' in started) return started;
    return { done: await this.repo.get(id).catch(() => null) };
  }

  /** A copy with its schedule off, so two exports never start sending the same data by surprise. */
  async duplicate(caller: Caller, id: string): Promise<Stored<ExportRecord>> {
    const current = await this.repo.get(id);
    await this.assertCanManage(caller, current.value);
    const now = new Date().toISOString();
    const { cleanup: _cleanup, ...definition } = current.value;
    return this.repo.create({
      ...definition,
      // A copy of an export being deleted or detached is a new, attached export.
      status: CLEANING_UP.includes(current.value.status) ? 'active' : current.value.status,
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
   * drops), and detaches once it is done (`detaching` meanwhile); `keepBrazeData` detaches at once.
   * Refused while a run is going, like DELETE.
   */
  async detach(caller: Caller, id: string, ifMatch: string | null, keepBrazeData = false): Promise<CleanupOutcome> {
    const current = await this.repo.get(id);
    await this.assertCanManage(caller, current.value);
    if (!current.value.connectionId) {
      if (ifMatch && ifMatch !== current.etag) throw preconditionFailed();
      return { done: current }; // detached already
    }
    return this.outcomeOf(id, await this.cleanups.begin(current, caller, ifMatch, 'detach', keepBrazeData));
  }
}

export type CleanupOutcome = { cleanupRun: { id: string; status: string } } | { done: Stored<ExportRecord> | null };
