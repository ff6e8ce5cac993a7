// Braze connections in Table Storage. Display names are unique: a name row sits in the same
// partition as its connection, so create/rename/delete are single atomic transactions.
import { createHash } from 'node:crypto';
import { TableTransaction, type TableClient } from '@azure/data-tables';
import type { Principal } from '../auth';
import type { KeyCheck } from '../braze/key-check';
import { conflict } from '../errors';
import { ConnectionLimitsRepo } from './connection-limits';
import { statusOf, tableCall } from './table-errors';

const PK = 'connection';
/**
 * The row that keeps display names unique (case-insensitive). A RowKey may not hold / \ # ? or
 * control characters (and at most 1 KiB): such a name is keyed by its hash instead, while names
 * without them keep the readable key earlier versions wrote.
 */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const UNSAFE_KEY = /[/\\#?\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const nameKey = (displayName: string) => {
  const name = displayName.trim().toLowerCase();
  return UNSAFE_KEY.test(name) ? `name~${createHash('sha256').update(name).digest('base64url')}` : `name:${name}`;
};
const rowKeyOf = (id: string) => `id:${id}`;

export interface ConnectionRecord {
  id: string;
  displayName: string;
  type: 'Braze';
  restEndpoint: string;
  baseUrl: string;
  allowContributors: boolean;
  /** Requests per 3 s this connection may use (Braze's default workspace limit is 3,000 per 3 s). */
  requestBudget: number;
  /** The last check of the key against Braze (on save, or POST …/test). */
  keyCheck?: KeyCheck;
  /** Connections sharing one Braze rate limit (see the connection schema); null/absent = its own. */
  rateLimitGroup?: string | null;
  /** Requests per clock hour every run on this connection may send together; null/absent = no cap. */
  hourlyRequestCap?: number | null;
  /** Braze's Azure export destination (verification reads Braze's files there); null/absent = a download URL. */
  exportContainer?: { container: string; accountUrl?: string } | null;
  apiKey: { source: 'stored' | 'keyVaultReference'; reference: string; hint: string | null };
  consent: { agreedAt: string; agreedBy: string; agreedByPrincipal?: Principal };
  createdAt: string;
  createdBy: string;
  /** Object id and tenant beside the display name (rows written before they were kept lack them). */
  createdByPrincipal?: Principal;
  updatedAt: string;
  updatedBy: string;
  updatedByPrincipal?: Principal;
}

export interface Stored<T> {
  value: T;
  etag: string;
}

const nameTaken = (displayName: string) => conflict(`A connection named "${displayName}" already exists`);

export class ConnectionsRepo {
  /** Braze's reported limits and the hourly cap's count, per connection (rows of their own). */
  readonly limits: ConnectionLimitsRepo;

  constructor(private readonly table: TableClient) {
    this.limits = new ConnectionLimitsRepo(table);
  }

  async create(record: ConnectionRecord): Promise<Stored<ConnectionRecord>> {
    const tx = new TableTransaction();
    tx.createEntity({ partitionKey: PK, rowKey: rowKeyOf(record.id), kind: 'connection', data: JSON.stringify(record) });
    tx.createEntity({ partitionKey: PK, rowKey: nameKey(record.displayName), kind: 'name', connectionId: record.id });
    await tableCall(
      'Connection',
      () => this.table.submitTransaction(tx.actions),
      () => nameTaken(record.displayName),
    );
    return this.get(record.id);
  }

  async get(id: string): Promise<Stored<ConnectionRecord>> {
    const e = await tableCall('Connection', () => this.table.getEntity<{ data: string }>(PK, rowKeyOf(id)));
    return { value: JSON.parse(e.data) as ConnectionRecord, etag: e.etag };
  }

  async list(): Promise<Stored<ConnectionRecord>[]> {
    const out: Stored<ConnectionRecord>[] = [];
    const rows = this.table.listEntities<{ data: string }>({
      queryOptions: { filter: `PartitionKey eq '${PK}' and kind eq 'connection'` },
    });
    for await (const e of rows) out.push({ value: JSON.parse(e.data) as ConnectionRecord, etag: e.etag });
    return out.sort((a, b) => a.value.displayName.localeCompare(b.value.displayName));
  }

  /** Replaces the record if `etag` still matches; moves the name row on rename. */
  async update(before: ConnectionRecord, after: ConnectionRecord, etag: string): Promise<Stored<ConnectionRecord>> {
    const tx = new TableTransaction();
    tx.updateEntity(
      { partitionKey: PK, rowKey: rowKeyOf(after.id), kind: 'connection', data: JSON.stringify(after) },
      'Replace',
      { etag },
    );
    if (nameKey(before.displayName) !== nameKey(after.displayName)) {
      tx.deleteEntity(PK, nameKey(before.displayName));
      tx.createEntity({ partitionKey: PK, rowKey: nameKey(after.displayName), kind: 'name', connectionId: after.id });
    }
    await tableCall(
      'Connection',
      () => this.table.submitTransaction(tx.actions),
      () => nameTaken(after.displayName),
    );
    return this.get(after.id);
  }

  async delete(record: ConnectionRecord, etag: string): Promise<void> {
    // Batches cannot carry an ETag on delete: delete the record conditionally, then free its name.
    await tableCall('Connection', () => this.table.deleteEntity(PK, rowKeyOf(record.id), { etag }));
    await this.table.deleteEntity(PK, nameKey(record.displayName)).catch((e) => {
      if (statusOf(e) !== 404) throw e;
    });
  }
}
