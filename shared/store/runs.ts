// Runs in Table Storage: partition = export id, row key sorts newest first. The run id carries
// both (`<exportId>.<rowKey>`), so GET /api/runs/{id} is a point read.
import type { Principal } from '../auth';
import { randomBytes } from 'node:crypto';
import { odata, type TableClient } from '@azure/data-tables';
import { notFound } from '../errors';
import type { RunProgress } from '../engine/run-export';
import type { Stored } from './connections';
import { tableCall } from './table-errors';

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'partially_succeeded' | 'failed' | 'cancelled';
export const FINISHED: RunStatus[] = ['succeeded', 'partially_succeeded', 'failed', 'cancelled'];

export interface RunRecord extends Partial<RunProgress> {
  id: string;
  exportId: string;
  trigger: 'manual' | 'schedule' | 'run-all';
  fullSync: boolean;
  status: RunStatus;
  snapshot: { id: string; folder: string; modifiedTime: string } | null;
  queuedAt: string;
  queuedBy: string;
  /** Object id and tenant of whoever queued it (null for the timer). */
  queuedByPrincipal?: Principal | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** Last sign of life from the worker: a stale one means the worker died. */
  heartbeatAt: string | null;
  attempts: number;
  errors: string[];
  rejectedReport: string | null;
}

const MAX_TIME = 9_999_999_999_999;

export function newRunId(exportId: string, now = Date.now()): string {
  return `${exportId}.${String(MAX_TIME - now).padStart(13, '0')}${randomBytes(3).toString('hex')}`;
}

export function splitRunId(runId: string): { exportId: string; rowKey: string } | null {
  const m = /^([0-9a-f-]{36})\.(\d{13}[0-9a-f]{6})$/.exec(runId);
  return m ? { exportId: m[1]!, rowKey: m[2]! } : null;
}

export class RunsRepo {
  constructor(private readonly table: TableClient) {}

  async create(run: RunRecord): Promise<Stored<RunRecord>> {
    const { exportId, rowKey } = splitRunId(run.id)!;
    await tableCall('Run', () => this.table.createEntity({ partitionKey: exportId, rowKey, data: JSON.stringify(run) }));
    return this.get(run.id);
  }

  async get(runId: string): Promise<Stored<RunRecord>> {
    const ids = splitRunId(runId);
    if (!ids) throw notFound('Run');
    const e = await tableCall('Run', () => this.table.getEntity<{ data: string }>(ids.exportId, ids.rowKey));
    return { value: JSON.parse(e.data) as RunRecord, etag: e.etag };
  }

  async update(run: RunRecord, etag?: string): Promise<Stored<RunRecord>> {
    const { exportId, rowKey } = splitRunId(run.id)!;
    const res = await tableCall('Run', () =>
      this.table.updateEntity({ partitionKey: exportId, rowKey, data: JSON.stringify(run) }, 'Replace', { etag: etag ?? '*' }),
    );
    return { value: run, etag: res.etag! };
  }

  async delete(runId: string): Promise<void> {
    const { exportId, rowKey } = splitRunId(runId)!;
    await this.table.deleteEntity(exportId, rowKey).catch(() => undefined);
  }

  /** Newest first. */
  async listForExport(exportId: string, top = 50): Promise<RunRecord[]> {
    const out: RunRecord[] = [];
    const pages = this.table.listEntities<{ data: string }>({ queryOptions: { filter: odata`PartitionKey eq ${exportId}` } }).byPage({ maxPageSize: top });
    for await (const page of pages) {
      for (const e of page) if (out.length < top) out.push(JSON.parse(e.data) as RunRecord);
      break;
    }
    return out;
  }
}
