// What a connection's runs learn and share about Braze's limits, in the connections table beside
// the connections (a partition of its own, so listing connections never sees these rows):
//   observed:<id>  the latest rate-limit headers Braze answered with (written by runs, throttled);
//   hourly:<id>    requests reserved against the connection's hourly cap in the current clock hour.
// Every write is conditional on the ETag read (or a create that fails if another worker created
// the row first): workers on other instances change these rows too, and none may undo another's.
import type { TableClient } from '@azure/data-tables';
import type { ObservedRateLimit } from '../braze/rate-limit-headers';
import { statusOf } from './table-errors';

const PK = 'connection-limits';
const observedKey = (id: string) => `observed:${id}`;
const hourlyKey = (id: string) => `hourly:${id}`;
/** Read-modify-write rounds before giving up on a row other workers keep changing. */
const MAX_ROUNDS = 25;
/** How far ahead of this worker's clock another instance's may be before its hour is taken for a wrong clock's. */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** Requests counted against the hourly cap in one clock hour (UTC; Braze's hourly limits reset on the hour). */
export interface HourlyUsage {
  /** Start of the clock hour, ISO. */
  hour: string;
  used: number;
}

export const hourStartOf = (ms: number) => ms - (ms % 3_600_000);

const retryable = (e: unknown) => statusOf(e) === 412 || statusOf(e) === 409;
/** A short random pause between rounds, so workers that collided do not collide again in step. */
const jitter = () => new Promise((r) => setTimeout(r, 5 + Math.random() * 40));

export class ConnectionLimitsRepo {
  constructor(private readonly table: TableClient) {}

  /** The latest rate-limit answer recorded for the connection, or null. */
  async observed(connectionId: string): Promise<ObservedRateLimit | null> {
    const row = await this.read<{ data: string }>(observedKey(connectionId));
    return row ? (JSON.parse(row.data) as ObservedRateLimit) : null;
  }

  /** Keeps `next` unless a newer observation is stored already (another worker's). */
  async recordObserved(connectionId: string, next: ObservedRateLimit): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const row = await this.read<{ data: string }>(observedKey(connectionId));
      if (row && (JSON.parse(row.data) as ObservedRateLimit).observedAt >= next.observedAt) return;
      const entity = { partitionKey: PK, rowKey: observedKey(connectionId), data: JSON.stringify(next) };
      try {
        if (row) await this.table.updateEntity(entity, 'Replace', { etag: row.etag });
        else await this.table.createEntity(entity);
        return;
      } catch (e) {
        if (!retryable(e)) throw e;
        await jitter();
      }
    }
  }

  /** Requests counted in the clock hour that holds `nowMs` (0 when none was recorded this hour). */
  async usage(connectionId: string, nowMs = Date.now()): Promise<HourlyUsage> {
    const hour = new Date(hourStartOf(nowMs)).toISOString();
    const row = await this.read<{ hour: string; used: number }>(hourlyKey(connectionId));
    return { hour, used: row && row.hour === hour ? row.used : 0 };
  }

  /**
   * Reserves up to `want` requests of the clock hour starting at `hourMs`, never past `cap`: how
   * many it got (0 = the cap is reached for that hour). A row still counting an earlier hour starts
   * the new one from 0; a row already counting a later hour that has begun, give or take
   * CLOCK_SKEW_MS (this worker's clock is a little behind), grants nothing; a row counting an hour
   * further ahead was written by an instance whose clock is wrong: it is stale and starts afresh,
   * rather than blocking every run on the connection until that hour.
   */
  async reserve(connectionId: string, hourMs: number, want: number, cap: number, nowMs = Date.now()): Promise<number> {
    const hour = new Date(hourMs).toISOString();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const row = await this.read<{ hour: string; used: number }>(hourlyKey(connectionId));
      if (row && row.hour > hour && !(Date.parse(row.hour) > nowMs + CLOCK_SKEW_MS)) return 0;
      const used = row && row.hour === hour ? row.used : 0;
      const granted = Math.max(0, Math.min(want, cap - used));
      if (granted === 0) return 0;
      const entity = { partitionKey: PK, rowKey: hourlyKey(connectionId), hour, used: used + granted };
      try {
        if (row) await this.table.updateEntity(entity, 'Replace', { etag: row.etag });
        else await this.table.createEntity(entity);
        return granted;
      } catch (e) {
        if (!retryable(e)) throw e;
        await jitter();
      }
    }
    throw new Error('the hourly request count kept changing under this worker; try again');
  }

  /** Returns requests reserved in the hour `hourMs` and not sent (nothing once the hour is over). */
  async giveBack(connectionId: string, hourMs: number, count: number): Promise<void> {
    const hour = new Date(hourMs).toISOString();
    for (let round = 0; round < MAX_ROUNDS && count > 0; round++) {
      const row = await this.read<{ hour: string; used: number }>(hourlyKey(connectionId));
      if (!row || row.hour !== hour) return;
      const entity = { partitionKey: PK, rowKey: hourlyKey(connectionId), hour, used: Math.max(0, row.used - count) };
      try {
        await this.table.updateEntity(entity, 'Replace', { etag: row.etag });
        return;
      } catch (e) {
        if (!retryable(e)) throw e;
        await jitter();
      }
    }
  }

  /** The connection is deleted: its rows go too. */
  async forget(connectionId: string): Promise<void> {
    for (const key of [observedKey(connectionId), hourlyKey(connectionId)])
      await this.table.deleteEntity(PK, key).catch((e: unknown) => {
        if (statusOf(e) !== 404) throw e;
      });
  }

  private async read<T extends object>(rowKey: string): Promise<(T & { etag: string }) | null> {
    try {
      return await this.table.getEntity<T>(PK, rowKey);
    } catch (e) {
      if (statusOf(e) === 404) return null;
      throw e;
    }
  }
}
