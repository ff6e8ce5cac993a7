// Paces requests to one Braze workspace: at most `requestsPerWindow` starts per window (Braze's
// default is 3,000 per 3 s, shared with the customer's other integrations), a cap on requests in
// flight, and a shared pause when Braze says 429 or that nothing remains in the window.

/** Braze counts a workspace's /users/track requests per window of 3 seconds; a request budget is per window. */
export const BUDGET_WINDOW_MS = 3000;

export interface BudgetOptions {
  requestsPerWindow: number;
  windowMs?: number;
  maxInFlight?: number;
  /** Share of the budget used at full speed; the rest absorbs clock skew between us and Braze. */
  headroom?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The round trip to Braze the requests kept in flight allow for at full pace (requestsInFlightFor). */
const ROUND_TRIP_ALLOWANCE_MS = 250;

/**
 * Requests to keep in flight at once at a pace of `requestsPerSecond`: Braze is an internet
 * service, and a pace of R requests a second with a round trip of T seconds needs R × T of them
 * under way. With 48 whatever the pace, a round trip of 100 ms held a 1 M-profile first run to ~450
 * requests a second against a budget of 970 (29.0–29.6 s instead of ~15 s: docs/performance.md). At least
 * 48, at most 256 (sockets to Braze, and what a worker killed meanwhile sends again).
 */
export const requestsInFlightFor = (requestsPerSecond: number): number =>
  Math.min(256, Math.max(48, Math.ceil((requestsPerSecond * ROUND_TRIP_ALLOWANCE_MS) / 1000)));

export class RequestBudget {
  private readonly baseIntervalMs: number;
  private factor = 1;
  private nextSlot = 0;
  private pausedUntil = 0;
  private inFlight = 0;
  /** Requests waiting for their slot (acquire called, not yet returned). */
  private waiting = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly maxInFlight: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: BudgetOptions) {
    const windowMs = options.windowMs ?? BUDGET_WINDOW_MS;
    const headroom = options.headroom ?? 0.97;
    this.baseIntervalMs = windowMs / (options.requestsPerWindow * headroom);
    // As many as the client's sockets: a request counts from the moment it waits for its slot, so
    // one that has its slot never waits for a socket (with its pace slot spent, and sent in a burst).
    this.maxInFlight = options.maxInFlight ?? requestsInFlightFor(1000 / this.baseIntervalMs);
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? defaultSleep;
  }

  /** Waits for a slot; call `release()` when the request has finished. */
  async acquire(): Promise<void> {
    this.waiting++;
    try {
      if (this.inFlight >= this.maxInFlight) await new Promise<void>((r) => this.waiters.push(r));
      this.inFlight++;
      for (;;) {
        const now = this.now();
        const interval = this.baseIntervalMs / this.factor;
        const slot = Math.max(now, this.nextSlot, this.pausedUntil);
        this.nextSlot = slot + interval;
        if (slot - now < 1) return;
        await this.sleep(slot - now);
        // A pause may have started while we slept: look again.
        if (this.now() >= this.pausedUntil) return;
      }
    } finally {
      this.waiting--;
    }
  }

  /** Requests waiting for their slot now. */
  get waitingForSlot(): number {
    return this.waiting;
  }

  release(): void {
    this.inFlight--;
    this.waiters.shift()?.();
  }

  /** Braze answered 429: everyone waits until `untilMs`, and we slow down for a while. */
  rateLimited(untilMs: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, untilMs);
    this.factor = Math.max(0.1, this.factor * 0.7);
  }

  /** Reads X-RateLimit-Remaining/Reset: nothing left in this window → wait for the reset. */
  observe(remaining: number | null, resetAtMs: number | null): void {
    if (remaining !== null && remaining <= 0 && resetAtMs !== null) this.pausedUntil = Math.max(this.pausedUntil, resetAtMs);
    // Recover speed gradually after a 429.
    if (this.factor < 1) this.factor = Math.min(1, this.factor + 0.002);
  }

  get speed(): number {
    return this.factor;
  }

  /** Requests per second at full speed. */
  get requestsPerSecond(): number {
    return 1000 / this.baseIntervalMs;
  }
}
