// Braze's limits as one attempt of a run meets them: the connection's hourly request cap (shared
// by every run on the connection, across instances) and the rate-limit headers Braze answers with,
// kept on the connection for the Admin view. A run that finds the cap used up does not wait in
// the worker: it ends its attempt and is queued again for the next clock hour, saying so on the run.
import type { BrazeClient } from '../braze/client';
import { HourlyCap } from '../braze/hourly-cap';
import type { ConnectionLimitsRepo } from '../store/connection-limits';
import type { ConnectionRecord } from '../store/connections';
import type { Attempt } from './attempt';

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
  ) {
    const id = connection.id;
    this.cap = connection.hourlyRequestCap
      ? new HourlyCap(
          { reserve: (hour, want, cap) => repo.reserve(id, hour, want, cap), giveBack: (hour, n) => repo.giveBack(id, hour, n) },
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

/** "14:00 UTC": the clock hour a capped run resumes at. */
const hourText = (ms: number) => `${new Date(ms).toISOString().slice(11, 16)} UTC`;

/**
 * The cap is used up for this hour: the run waits, visibly, and is queued again for the next
 * hour (not held in the worker, which is time-boxed). Its checkpoint is kept; the next attempt goes on from there.
 */
export async function waitForTheHour(attempt: Attempt, cap: HourlyCap, started: boolean): Promise<void> {
  const resumesAt = cap.resumesAt ?? Date.now();
  const now = new Date().toISOString();
  attempt.run = {
    ...attempt.run,
    waitingFor: `the connection's hourly request cap (${cap.cap.toLocaleString('en-US')} requests an hour): resumes at ${hourText(resumesAt)}`,
    resumesAt: new Date(resumesAt).toISOString(),
    heartbeatAt: now,
    // An attempt that sent and stopped at the cap ended as planned, like one at the time box.
    ...(started ? { continuations: (attempt.run.continuations ?? 0) + 1 } : {}),
  };
  await attempt.writer.write(attempt.run);
  // A second past the hour, so the hour's count has turned on every instance.
  attempt.requeueIn = Math.max(1, Math.ceil((resumesAt - Date.now()) / 1000) + 1);
  attempt.log(`run ${attempt.run.id}: the connection's hourly request cap is reached; waits until ${hourText(resumesAt)}`);
}
