// Export definitions in Table Storage (one row each; the definition as JSON, the connection id as a
// column so "who uses this connection" is one query).
import type { Principal } from '../auth';
import type { TableClient } from '@azure/data-tables';
import { odata } from '@azure/data-tables';
import type { ExportDefinition } from '../exports/schema';
import type { Stored } from './connections';
import { jsonOf, jsonProperties } from './table-json';
import { tableCall } from './table-errors';

const PK = 'export';

/**
 * `inactive` after detach: kept, but without a connection and never run. `deleting` / `detaching`:
 * a cleanup run is withdrawing the export's membership from Braze (or did not finish doing so);
 * the timer, runs, previews and edits leave the export alone until the cleanup succeeds (then it is
 * deleted or detached), is retried, or the export is restored.
 */
export type ExportStatus = 'active' | 'inactive' | 'deleting' | 'detaching';
export const CLEANING_UP: readonly ExportStatus[] = ['deleting', 'detaching'];

/** The cleanup a `deleting` / `detaching` export waits for. */
export interface ExportCleanup {
  then: 'delete' | 'detach';
  /** The cleanup run (the latest, when retried). */
  runId: string;
  requestedAt: string;
  requestedBy: string;
  /** Braze was left as it was (`?keepBrazeData=true`): nothing withdrawn. */
  keepBrazeData: boolean;
}

export interface ExportRecord extends ExportDefinition {
  id: string;
  status: ExportStatus;
  /** Set while `deleting` / `detaching`. */
  cleanup?: ExportCleanup | null;
  createdAt: string;
  createdBy: string;
  /** Object id and tenant beside the display name (rows written before they were kept lack them). */
  createdByPrincipal?: Principal;
  updatedAt: string;
  updatedBy: string;
  updatedByPrincipal?: Principal;
}

interface ExportEntity {
  data: string;
  connectionId: string;
}

const toStored = (e: ExportEntity & { etag: string }): Stored<ExportRecord> => ({
  value: JSON.parse(jsonOf(e as unknown as Record<string, unknown>)) as ExportRecord,
  etag: e.etag,
});

export class ExportsRepo {
  constructor(private readonly table: TableClient) {}

  private entity(record: ExportRecord) {
    // A definition with 100 segments and 100 long attribute mappings exceeds one property: spread it.
    return {
      partitionKey: PK,
      rowKey: record.id,
      ...jsonProperties(JSON.stringify(record)),
      connectionId: record.connectionId ?? '',
    };
  }

  async create(record: ExportRecord): Promise<Stored<ExportRecord>> {
    await tableCall('Export', () => this.table.createEntity(this.entity(record)));
    return this.get(record.id);
  }

  async get(id: string): Promise<Stored<ExportRecord>> {
    return toStored(await tableCall('Export', () => this.table.getEntity<ExportEntity>(PK, id)));
  }

  async list(filter?: { connectionId?: string }): Promise<Stored<ExportRecord>[]> {
    const query = filter?.connectionId
      ? odata`PartitionKey eq ${PK} and connectionId eq ${filter.connectionId}`
      : odata`PartitionKey eq ${PK}`;
    const out: Stored<ExportRecord>[] = [];
    for await (const e of this.table.listEntities<ExportEntity>({ queryOptions: { filter: query } })) out.push(toStored(e));
    return out.sort((a, b) => a.value.name.localeCompare(b.value.name) || a.value.id.localeCompare(b.value.id));
  }

  async update(record: ExportRecord, etag: string): Promise<Stored<ExportRecord>> {
    await tableCall('Export', () => this.table.updateEntity(this.entity(record), 'Replace', { etag }));
    return this.get(record.id);
  }

  async delete(id: string, etag: string): Promise<void> {
    await tableCall('Export', () => this.table.deleteEntity(PK, id, { etag }));
  }
}
