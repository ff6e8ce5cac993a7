// How long sending a number of Braze requests takes on a connection: at its request budget per
// 3 s (or the limit Braze reported, when lower), and, with an hourly request cap, waiting for the
// next clock hour each time the cap is used up, counting what other runs used this hour already.
// Pure arithmetic, for the preview and the held run's figures.
import { thousands } from '../thousands';

const HOUR_S = 3600;
const WINDOW_S = 3;

export interface DurationInput {
  requests: number;
  /** The connection's request budget, per 3 s. */
  requestBudget: number;
  /** X-RateLimit-Limit as Braze last reported it (per 3 s window), if known. */
  reportedLimit?: number | null;
  hourlyCap?: number | null;
  /** Requests already counted against the cap in the current clock hour. */
  usedThisHour?: number;
  /** Seconds since the current clock hour began (UTC). */
  secondsIntoHour?: number;
  /** Time the run spends reading and diffing; sending overlaps it, so the longer of the two counts. */
  readingAndDiffSeconds?: number;
}

export interface DurationEstimate {
  seconds: number;
  sendingSeconds: number;
  readingAndDiffSeconds: number;
  requestsPerSecond: number;
  /** What sets the pace: the connection's budget, Braze's reported limit, or the hourly cap. */
  limitedBy: 'requestBudget' | 'brazeReportedLimit' | 'hourlyCap';
  /** Times the run would use the cap up and wait for the next hour. */
  hourlyCapWaits: number;
  /** For a person: "about 2 h 40 min (hourly cap 50,000 reached twice)". */
  text: string;
}

/** The limit Braze reported, when it is one (a positive number). */
const reportedOf = (limit?: number | null) => (limit && limit > 0 ? limit : null);

/** Requests a second Braze takes from a run on the connection: its budget, or the limit Braze reported when lower. */
export function paceOf(requestBudget: number, reportedLimit?: number | null): number {
  const reported = reportedOf(reportedLimit);
  return (reported !== null ? Math.min(requestBudget, reported) : requestBudget) / WINDOW_S;
}

export function estimateDuration(input: DurationInput): DurationEstimate {
  const reported = reportedOf(input.reportedLimit);
  const rate = paceOf(input.requestBudget, reported);
  const requests = Math.max(0, Math.ceil(input.requests));
  const { sendingSeconds, waits } = input.hourlyCap
    ? sendingUnderCap(requests, rate, input.hourlyCap, input.usedThisHour ?? 0, input.secondsIntoHour ?? 0)
    : { sendingSeconds: requests / rate, waits: 0 };
  const readingAndDiffSeconds = input.readingAndDiffSeconds ?? 0;
  const seconds = Math.max(sendingSeconds, readingAndDiffSeconds);
  const limitedBy =
    waits > 0 ? 'hourlyCap' : reported !== null && reported < input.requestBudget ? 'brazeReportedLimit' : 'requestBudget';
  return {
    seconds: round(seconds),
    sendingSeconds: round(sendingSeconds),
    readingAndDiffSeconds: round(readingAndDiffSeconds),
    requestsPerSecond: round(rate),
    limitedBy,
    hourlyCapWaits: waits,
    text: describe(seconds, waits, input.hourlyCap ?? null),
  };
}

/**
 * Sending `requests` at `rate` per second when at most `cap` go in any clock hour: the rest of this
 * hour (less what is used already), then whole hours, then what is left. Each hour that ends with
 * the cap used up is a wait.
 */
function sendingUnderCap(requests: number, rate: number, cap: number, used: number, secondsIntoHour: number) {
  const leftThisHour = HOUR_S - Math.min(HOUR_S, Math.max(0, secondsIntoHour));
  const firstHour = Math.min(Math.max(0, cap - used), rate * leftThisHour);
  if (requests <= firstHour) return { sendingSeconds: requests / rate, waits: 0 };
  const capBindsFirst = Math.max(0, cap - used) < rate * leftThisHour;
  const perHour = Math.min(cap, rate * HOUR_S);
  const capBinds = cap < rate * HOUR_S;
  let rest = requests - firstHour;
  // Whole hours after the first, then the last one's share.
  const wholeHours = Math.ceil(rest / perHour) - 1;
  rest -= wholeHours * perHour;
  return {
    sendingSeconds: leftThisHour + wholeHours * HOUR_S + rest / rate,
    waits: (capBindsFirst ? 1 : 0) + (capBinds ? wholeHours : 0),
  };
}

const TIMES = ['', 'once', 'twice'];

function describe(seconds: number, waits: number, cap: number | null): string {
  const about = seconds < 1 ? 'under a second' : `about ${durationText(seconds)}`;
  if (waits === 0 || cap === null) return about;
  const times = TIMES[waits] ?? `${waits} times`;
  return `${about} (hourly cap ${thousands(cap)} reached ${times})`;
}

/** "under a minute", "12 min", "2 h 40 min", "3 days 4 h". */
export function durationText(seconds: number): string {
  if (seconds < 60) return seconds < 1 ? 'under a second' : `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h${minutes % 60 ? ` ${minutes % 60} min` : ''}`;
  const days = Math.floor(hours / 24);
  return `${days} days${hours % 24 ? ` ${hours % 24} h` : ''}`;
}

const round = (n: number) => Math.round(n * 10) / 10;

/** What the estimate needs to know of a connection's limits (store/connection-limits.ts). */
export interface LimitsSource {
  observed(connectionId: string): Promise<{ limit: number | null } | null>;
  usage(connectionId: string, nowMs?: number): Promise<{ used: number }>;
}

/** The connection's pace as its limits stand now (paceOf). */
export async function connectionPace(limits: LimitsSource, connection: { id: string; requestBudget: number }): Promise<number> {
  // Unknown (storage unreachable): the budget, as before Braze ever answered.
  const observed = await limits.observed(connection.id).catch(() => null);
  return paceOf(connection.requestBudget, observed?.limit ?? null);
}

/** The estimate for `requests` on `connection`, as its limits stand now. */
export async function connectionDuration(
  limits: LimitsSource,
  connection: { id: string; requestBudget: number; hourlyRequestCap?: number | null },
  requests: number,
  readingAndDiffSeconds = 0,
  nowMs = Date.now(),
): Promise<DurationEstimate> {
  const cap = connection.hourlyRequestCap ?? null;
  const [observed, usage] = await Promise.all([limits.observed(connection.id), cap ? limits.usage(connection.id, nowMs) : null]);
  return estimateDuration({
    requests,
    requestBudget: connection.requestBudget,
    reportedLimit: observed?.limit ?? null,
    hourlyCap: cap,
    usedThisHour: usage?.used ?? 0,
    secondsIntoHour: (nowMs % (HOUR_S * 1000)) / 1000,
    readingAndDiffSeconds,
  });
}
