// What an Admin sees of a connection's limits: what Braze itself reported (its X-RateLimit-*
// headers, recorded by runs), the hourly cap and how much of this hour it has used, and warnings
// where the connection's settings ask more of Braze than Braze says it allows.
import type { ObservedRateLimit } from '../braze/rate-limit-headers';
import type { HourlyUsage } from '../store/connection-limits';
import type { ConnectionRecord } from '../store/connections';
import { thousands } from '../thousands';

export interface ConnectionLimitsView {
  hourlyRequestCap: number | null;
  /** Braze's latest answer about the workspace's limit, as a run saw it; null until a run has sent. */
  brazeRateLimit: ObservedRateLimit | null;
  /** Requests counted against the hourly cap in the current clock hour (UTC); null without a cap. */
  hourlyUsage: (HourlyUsage & { remaining: number }) | null;
  warnings: string[];
}

/** Where the connection's settings ask more than Braze reports (empty when nothing is known, or all is well). */
export function limitWarnings(record: Pick<ConnectionRecord, 'requestBudget'>, observed: ObservedRateLimit | null): string[] {
  const reported = observed?.limit;
  if (reported === null || reported === undefined || record.requestBudget <= reported) return [];
  return [
    `The request budget (${thousands(record.requestBudget)} requests per 3 s) is above the limit Braze reported for this workspace (${thousands(reported)}, seen ${observed!.observedAt}): Braze will answer 429 and slow every run; lower requestBudget to ${thousands(reported)} or less (less still if other integrations write to this workspace)`,
  ];
}

export function limitsView(
  record: Pick<ConnectionRecord, 'requestBudget' | 'hourlyRequestCap'>,
  observed: ObservedRateLimit | null,
  usage: HourlyUsage | null,
): ConnectionLimitsView {
  const cap = record.hourlyRequestCap ?? null;
  return {
    hourlyRequestCap: cap,
    brazeRateLimit: observed,
    hourlyUsage: cap !== null && usage ? { ...usage, remaining: Math.max(0, cap - usage.used) } : null,
    warnings: limitWarnings(record, observed),
  };
}
