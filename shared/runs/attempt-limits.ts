// Braze's limits as one attempt of a run meets them: the connection's hourly request cap (shared
// by every run on the connection, across instances) and the rate-limit headers Braze answers with,
// kept on the connection for the Admin view. A run that finds the cap used up does not wait in
// the worker: it ends its attempt and is queued again for the next clock hour (hourly-wait.ts).
import type { BrazeClient } from '../braze/client';
import { HourlyCap } from '../braze/hourly-cap';
import type { ConnectionLimitsRepo } from '../store/connection-limits';
import type { ConnectionRecord } from '../store/connections';

/** Braze's headers are written on the connection at most this often while a run sends (and once at its end). */
export const RECORD_EVERY_MS = 5000;

export class AttemptLimits {
  /** null: the connection has no hourly cap. */
  readonly cap: HourlyCap | null;
  private braze: BrazeClient | null = null;
  private recordedAt = 0;
  private recorded: string | null = null;

  constructor(
    private readonly repo: ConnectionLimitsRepo,
    private readonly connection: ConnectionRecord,
    /**
     * The connection's hourly cap as it stands now (a point read of the connection), read before
     * each chunk is reserved: a cap lowered while the attempt sends applies from the next chunk.
     * A cap set only after the attempt started applies from the next attempt.
     */
    currentCap?: () => Promise<number | null>,
  ) {
    const id = connection.id;
    this.cap = connection.hourlyRequestCap
      ? new HourlyCap(
          {
            reserve: (hour, want, cap) => repo.reserve(id, hour, want, cap),
            giveBack: (hour, n) => repo.giveBack(id, hour, n),
            ...(currentCap ? { currentCap } : {}),
          },
          connection.hourlyRequestCap,
        )
      : null;
  }

  /** The client whose answers are recorded. */
  watch(braze: BrazeClient): void {
    this.braze = braze;
  }

  /** Writes what Braze said last, if it changed and the last write is RECORD_EVERY_MS old (the heartbeat calls it). */
  async record(force = false): Promise<void> {
    const seen = this.braze?.rateLimit;
    if (!seen || (!force && Date.now() - this.recordedAt < RECORD_EVERY_MS)) return;
    const text = JSON.stringify(seen);
    if (text === this.recorded) return;
    this.recordedAt = Date.now();
    this.recorded = text;
    await this.repo.recordObserved(this.connection.id, seen);
  }

  /** The attempt ends: requests reserved and not sent go back to the hour's count; Braze's last word is kept. Never throws. */
  async close(): Promise<void> {
    await Promise.all([this.cap?.release(), this.record(true)].map((p) => p?.catch(() => undefined)));
  }
}
