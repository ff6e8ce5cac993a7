// Per-export run bookkeeping, kept apart from the definition row so runs never change its ETag:
// the active run (one at a time), the last snapshot exported, the last run's summary.
import type { TableClient } from '@azure/data-tables';
import type { Stored } from './connections';
import { statusOf, tableCall } from './table-errors';

const PK = 'state';

export interface ExportState {
  activeRunId: string | null;
  lastSnapshotId: string | null;
  /** Fingerprint of the export settings that snapshot was exported with. */
  lastDefinition?: string | null;
  /** The last run's summary; `brazeRefusals`: profiles Braze refused in it (not rows rejected on reading). */
  lastRun: { id: string; status: string; finishedAt: string | null; counts?: unknown; brazeRefusals?: number } | null;
  /** Rows per CI segment in the last export run that delivered: what the guard sees an emptied segment against. */
  lastSegmentRows?: Record<string, number> | null;
  /** A snapshot whose held run a person dismissed: the timer leaves it alone (a newer one is weighed afresh). */
  dismissedSnapshotId?: string | null;
  /** The snapshot whose refused profiles the timer already tried once more (it does not keep trying). */
  refusalsRetriedFor?: string | null;
  /** The last verification run's summary (verification runs leave `lastRun` to export runs). */
  lastVerify?: { id: string; status: string; finishedAt: string | null; drift?: object } | null;
  /** When the timer last looked at this export, and what it found. */
  lastCheck: { at: string; result: string } | null;
}

export const emptyState = (): ExportState => ({ activeRunId: null, lastSnapshotId: null, lastRun: null, lastCheck: null });

export class ExportStateRepo {
  constructor(private readonly table: TableClient) {}

  async get(exportId: string): Promise<Stored<ExportState> | null> {
    try {
      const e = await this.table.getEntity<{ data: string }>(PK, exportId);
      return { value: { ...emptyState(), ...(JSON.parse(e.data) as ExportState) }, etag: e.etag };
    } catch (e) {
      if (statusOf(e) === 404) return null;
      throw e;
    }
  }

  /** Conditional write: `etag` null = create (fails if someone else just did). 412/409 → AppError. */
  async put(exportId: string, state: ExportState, etag: string | null): Promise<void> {
    const entity = { partitionKey: PK, rowKey: exportId, data: JSON.stringify(state) };
    await tableCall('Export state', () =>
      etag ? this.table.updateEntity(entity, 'Replace', { etag }) : this.table.createEntity(entity),
    );
  }

  /** Read-modify-write with retries on concurrent changes. */
  async modify(exportId: string, change: (s: ExportState) => ExportState | null): Promise<ExportState | null> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(exportId);
      const next = change(current?.value ?? emptyState());
      if (!next) return null;
      try {
        await this.put(exportId, next, current?.etag ?? null);
        return next;
      } catch (e) {
        const status = (e as { status?: number }).status;
        if ((status === 412 || status === 409) && attempt < 10) continue;
        throw e;
      }
    }
  }

  async delete(exportId: string): Promise<void> {
    await this.table.deleteEntity(PK, exportId).catch(() => undefined);
  }
}
