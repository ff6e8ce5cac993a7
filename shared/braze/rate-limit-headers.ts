// Braze's own word on a workspace's rate limit: the X-RateLimit-* headers of /users/track answers
// (names matched case-insensitively by the transport). Within the limit Braze sends Limit,
// Remaining and Reset (epoch seconds); on a 429 it sends X-RateLimit-Retry-After in their place.

/** What Braze last said about the limit, as a connection keeps it (no secret in it). */
export interface ObservedRateLimit {
  /** X-RateLimit-Limit: requests Braze allows the workspace per window. */
  limit: number | null;
  /** X-RateLimit-Remaining: what was left in that window. */
  remaining: number | null;
  /** X-RateLimit-Reset, as an ISO time: when the window starts again. */
  resetsAt: string | null;
  /** When Braze answered with these (ISO). */
  observedAt: string;
  /** The last 429 seen with it: when, and the X-RateLimit-Retry-After it carried (seconds), if any. */
  lastRateLimited: { at: string; retryAfterSeconds: number | null } | null;
}

type Headers = { header(name: string): string | null };

export function numberHeader(res: Headers, name: string): number | null {
  const v = res.header(name);
  if (v === null || v.trim() === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** Folds one answer's headers into what was known before (a 429 keeps the last limit Braze reported). */
export function observeRateLimit(
  before: ObservedRateLimit | null,
  res: Headers & { status: number },
  now = new Date(),
): ObservedRateLimit | null {
  const limit = numberHeader(res, 'x-ratelimit-limit');
  const remaining = numberHeader(res, 'x-ratelimit-remaining');
  const reset = numberHeader(res, 'x-ratelimit-reset');
  const at = now.toISOString();
  if (res.status === 429) {
    const retryAfterSeconds = numberHeader(res, 'x-ratelimit-retry-after') ?? numberHeader(res, 'retry-after');
    const base = before ?? { limit, remaining, resetsAt: null, observedAt: at, lastRateLimited: null };
    return { ...base, observedAt: at, lastRateLimited: { at, retryAfterSeconds } };
  }
  if (limit === null && remaining === null && reset === null) return before;
  return {
    limit: limit ?? before?.limit ?? null,
    remaining,
    resetsAt: reset === null ? null : new Date(reset * 1000).toISOString(),
    observedAt: at,
    lastRateLimited: before?.lastRateLimited ?? null,
  };
}
