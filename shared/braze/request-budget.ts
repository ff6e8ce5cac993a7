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

export class RequestBudget {
  private readonly baseIntervalMs: number;
  private factor = 1;
  private nextSlot = 0;
  private pausedUntil = 0;
  private inFlight = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly maxInFlight: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: BudgetOptions) {
    const windowMs = options.windowMs ?? BUDGET_WINDOW_MS;
    const headroom = options.headroom ?? 0.97;
    this.baseIntervalMs = windowMs / (options.requestsPerWindow * headroom);
    this.maxInFlight = options.maxInFlight ?? 64;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? defaultSleep;
  }

  /** Waits for a slot; call `release()` when the request has finished. */
  async acquire(): Promise<void> {
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
