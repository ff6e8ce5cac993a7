// Runs in Table Storage: partition = export id, row key sorts newest first. The run id carries
// both (`<exportId>.<rowKey>`), so GET /api/runs/{id} is a point read.
import type { Principal } from '../auth';
import { randomBytes } from 'node:crypto';
import { odata, type TableClient } from '@azure/data-tables';
import { AppError, fieldError, notFound } from '../errors';
import type { RunProgress } from '../engine';
import type { VerifyRecord } from '../verify/record';
import type { Stored } from './connections';
import { tableCall } from './table-errors';
import { jsonOf, jsonProperties } from './table-json';

/** `held`: the run read and diffed the snapshot, sent nothing, and waits for a person (see runs/guard.ts). */
export type RunStatus = 'queued' | 'running' | 'held' | 'succeeded' | 'partially_succeeded' | 'failed' | 'cancelled';
export const FINISHED: RunStatus[] = ['succeeded', 'partially_succeeded', 'failed', 'cancelled'];

export interface RunRecord extends Partial<RunProgress> {
  id: string;
  exportId: string;
  trigger: 'manual' | 'schedule' | 'run-all';
  /**
   * `cleanup`: withdraw the export's membership from every profile at its current destination,
   * then `then` (delete the export, or detach it) — the API's DELETE and detach start one.
   */
  kind?: 'export' | 'cleanup' | 'verify';
  then?: 'delete' | 'detach';
  /** A cleanup run that withdraws nothing: the user keeps the data in Braze, or the export never sent any. */
  keepBrazeData?: boolean;
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
  /** Attempts started; `continuations` of them ended at the time box as planned. */
  attempts: number;
  continuations?: number;
  /** Times the timer found the run stalled and queued it again. */
  stallRequeues?: number;
  /** Set by POST /api/runs/{id}/cancel; the worker stops within seconds and ends the run `cancelled`. */
  cancelRequested?: { at: string; by: string } | null;
  /** A cleanup run's progress: the sync-state buckets withdrawn so far (it continues from there). */
  withdrawnBuckets?: number;
  /** What a queued run waits for (another run on the same Braze rate limit, or the next hour of the hourly cap). */
  waitingFor?: string | null;
  /** When a run that reached the connection's hourly request cap goes on (the next clock hour); kept afterwards. */
  resumesAt?: string | null;
  /** Objects the hourly cap kept from being sent, over every attempt (counted in `failed`; the cap is blamed only for these). */
  cappedNotSent?: number;
  errors: string[];
  rejectedReport: string | null;
  /** Why the run was held, with what it would do (kept after approval, for the record). */
  held?: HeldFigures | null;
  /** Attempts that weighed the run and held it (they sent nothing). */
  heldAttempts?: number;
  /** A verification run's request to Braze and what it found (kind `verify`). */
  verify?: VerifyRecord;
  /** An export run queued by the repair of this verification run: it sends the drift marked in the sync state. */
  repairOf?: string;
  /** Approved to go past the export's guard: up front (`approve: true`) or after being held. */
  approved?: { by: string; at: string } | null;
}

export interface HeldFigures {
  at: string;
  /** Each threshold crossed, in words ("41 % of the 12,000 members would leave (limit 20 %)"). */
  reasons: string[];
  snapshotId: string;
  /** The export settings' fingerprint it was weighed under: an approval covers these settings and snapshot only. */
  definition: string;
  /** What the run would do: the preview's figures. */
  profiles: { total: number; members: number; new: number; changed: number; unchanged: number; leaving: number };
  emptiedSegments: string[];
  requests: number;
  dataPoints: number;
  settingsChanged: boolean;
  /** How long sending would take at the connection's limits when it was held ("about 2 h 2 min (hourly cap 50,000 reached twice)"). */
  estimate?: string;
}

const MAX_TIME = 9_999_999_999_999;

/** Table Storage's continuation tokens are base64 JSON naming the next partition and row keys. */
function isTableToken(token: string): boolean {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { nextPartitionKey?: unknown; nextRowKey?: unknown };
    return typeof t === 'object' && t !== null && typeof t.nextPartitionKey === 'string';
  } catch {
    return false;
  }
}

/**
 * A run row must never outgrow what Table Storage takes (64 KiB per string property, 1 MiB per
 * entity), whatever happens in the run: buckets done are kept as a bitmap (up to 4,096 buckets in
 * 684 characters), error and warning texts are cut, and the JSON is spread over several properties.
 */
export const MAX_RUN_MESSAGES = 20;
export const MAX_MESSAGE_CHARS = 1000;

const cut = (text: string) => (text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS - 1)}…` : text);

/** Keeps the newest messages, each cut to size. */
export const boundedMessages = (messages: string[]) => messages.slice(-MAX_RUN_MESSAGES).map(cut);

function bitmapOf(done: number[], total: number): string {
  const bits = Buffer.alloc(Math.ceil(total / 8));
  for (const b of done) if (b >= 0 && b < total) bits[b >> 3]! |= 1 << (b & 7);
  return bits.toString('base64');
}

function bucketsFromBitmap(bitmap: string, total: number): number[] {
  const bits = Buffer.from(bitmap, 'base64');
  const done: number[] = [];
  for (let b = 0; b < total; b++) if (bits[b >> 3]! & (1 << (b & 7))) done.push(b);
  return done;
}

type RunEntity = { partitionKey: string; rowKey: string } & Record<string, string>;

/** The run as table properties: `data`, `data1`, … holding its JSON, with buckets as a bitmap. */
function toEntity(run: RunRecord): RunEntity {
  const { exportId, rowKey } = splitRunId(run.id)!;
  const compact = {
    ...run,
    errors: boundedMessages(run.errors),
    ...(run.warnings ? { warnings: boundedMessages(run.warnings) } : {}),
    ...(run.buckets ? { buckets: { total: run.buckets.total, doneBitmap: bitmapOf(run.buckets.done, run.buckets.total) } } : {}),
  };
  return { partitionKey: exportId, rowKey, ...jsonProperties(JSON.stringify(compact)) };
}

function fromEntity(e: Record<string, unknown>): RunRecord {
  const parsed = JSON.parse(jsonOf(e)) as RunRecord & { buckets?: { total: number; done?: number[]; doneBitmap?: string } };
  if (parsed.buckets?.doneBitmap !== undefined)
    parsed.buckets = { total: parsed.buckets.total, done: bucketsFromBitmap(parsed.buckets.doneBitmap, parsed.buckets.total) };
  return parsed as RunRecord;
}

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
    await tableCall('Run', () => this.table.createEntity(toEntity(run)));
    return this.get(run.id);
  }

  async get(runId: string): Promise<Stored<RunRecord>> {
    const ids = splitRunId(runId);
    if (!ids) throw notFound('Run');
    const e = await tableCall('Run', () => this.table.getEntity<Record<string, unknown>>(ids.exportId, ids.rowKey));
    return { value: fromEntity(e), etag: e.etag };
  }

  /** Replaces the run; with `etag`, only if nobody wrote it since (412 otherwise). */
  async update(run: RunRecord, etag?: string): Promise<Stored<RunRecord>> {
    const res = await tableCall('Run', () => this.table.updateEntity(toEntity(run), 'Replace', { etag: etag ?? '*' }));
    return { value: run, etag: res.etag! };
  }

  /** Replaces the run only if nobody wrote it since `etag` was read; null when somebody did. */
  async updateIfUnchanged(run: RunRecord, etag: string): Promise<Stored<RunRecord> | null> {
    try {
      return await this.update(run, etag);
    } catch (e) {
      if (e instanceof AppError && e.status === 412) return null;
      throw e;
    }
  }

  async delete(runId: string): Promise<void> {
    const { exportId, rowKey } = splitRunId(runId)!;
    await this.table.deleteEntity(exportId, rowKey).catch(() => undefined);
  }

  /** Newest first. */
  /** A page of the export's runs, newest first, and where the next page starts (Table Storage's continuation token). */
  async pageForExport(exportId: string, continuationToken?: string, top = 50): Promise<{ runs: RunRecord[]; next?: string }> {
    if (continuationToken !== undefined && !isTableToken(continuationToken))
      throw fieldError('continuationToken', 'is not a token this API gave (take the nextLink of the page before)');
    const pages = this.table
      .listEntities<Record<string, unknown>>({ queryOptions: { filter: odata`PartitionKey eq ${exportId}` } })
      .byPage({ maxPageSize: top, continuationToken });
    for await (const page of pages) return { runs: page.slice(0, top).map(fromEntity), next: page.continuationToken };
    return { runs: [] };
  }

  async listForExport(exportId: string, top = 50): Promise<RunRecord[]> {
    return (await this.pageForExport(exportId, undefined, top)).runs;
  }
}
