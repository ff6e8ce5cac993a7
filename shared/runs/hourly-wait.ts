// A run whose connection's hourly request cap is used up does not wait in the worker (which is
// time-boxed): it says so on the run and is queued again for the next clock hour.
import type { HourlyCap } from '../braze/hourly-cap';
import type { Attempt } from './attempt';
import { thousands } from '../thousands';

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
    waitingFor: `the connection's hourly request cap (${thousands(cap.cap)} requests an hour): resumes at ${hourText(resumesAt)}`,
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
