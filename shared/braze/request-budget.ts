// Paces requests to one Braze workspace. Braze counts a workspace's /users/track requests per
// window (3,000 per 3 s by default, shared with the customer's other integrations); a run keeps at
// most 97 % of its connection's budget in any window and, within that, sends as soon as it can, so
// a run that waited (reading before its first request, a stall) catches up. Also a cap on requests
// in flight, and a shared pause when Braze says 429 or that nothing remains in the window.
//
// A request counts from its slot until a window after its bytes went to the network. Braze counts
// it on arrival, a transit later: a steady transit only shifts the window, and what it varies by
// (jitter; ~90 ms at the whole default limit's pace) is what the 3 % absorbs.

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
/** Windows are durations: a monotonic clock, which no change of the system's time moves. */
const monotonicNow = () => performance.now();

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

/** Times older than this many are dropped from the front of the list at once (not one by one). */
const COMPACT_AFTER = 4096;

/** One request's place in the budget: `written` when its bytes have gone, `release` once it has been answered. */
export interface BudgetSlot {
  written(): void;
  release(): void;
}

/**
 * The window before the budget existed is taken as used at the even pace (the run before this one
 * on the limit may have just let it go: `msUntilEven`), so only the time since is caught up.
 */
export class RequestBudget {
  /** Requests allowed in a window (the budget less the headroom). */
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly createdAt: number;
  /** When each request's bytes went, oldest first, from `head` on. */
  private readonly sentAt: number[] = [];
  private head = 0;
  /** Requests with a slot whose bytes have not gone yet: they count from now on. */
  private unwritten = 0;
  private factor = 1;
  private pausedUntil = 0;
  /** Requests between acquire() and release(): waiting for a socket or a slot, or under way. */
  private inFlight = 0;
  /** Requests waiting for their slot (acquire called, not yet returned). */
  private waiting = 0;
  private readonly waiters: (() => void)[] = [];
  /** Slots are taken one after another, so one timer waits for the next, not every waiter. */
  private turn: Promise<void> = Promise.resolve();
  private readonly maxInFlight: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: BudgetOptions) {
    this.windowMs = options.windowMs ?? BUDGET_WINDOW_MS;
    this.limit = Math.max(1, Math.floor(options.requestsPerWindow * (options.headroom ?? 0.97)));
    // As many as the client's sockets: a request counts from the moment it waits for its slot, so
    // one that has its slot never waits for a socket (with its pace slot spent, and sent in a burst).
    this.maxInFlight = options.maxInFlight ?? requestsInFlightFor(this.requestsPerSecond);
    this.now = options.now ?? monotonicNow;
    this.sleep = options.sleep ?? defaultSleep;
    this.createdAt = this.now();
  }

  /** Waits for a slot. */
  async acquire(): Promise<BudgetSlot> {
    this.waiting++;
    try {
      if (this.inFlight >= this.maxInFlight) await new Promise<void>((r) => this.waiters.push(r));
      this.inFlight++;
      const slot = this.turn.then(() => this.waitForSlot());
      this.turn = slot.catch(() => undefined);
      await slot;
    } finally {
      this.waiting--;
    }
    let written = false;
    const wrote = () => {
      if (written) return;
      written = true;
      this.unwritten--;
      this.sentAt.push(this.now());
    };
    return {
      written: wrote,
      // Never reported written (it failed first, or was not sent): it counts from now, to be safe.
      release: () => {
        wrote();
        this.inFlight--;
        this.waiters.shift()?.();
      },
    };
  }

  /** Requests waiting for their slot now. */
  get waitingForSlot(): number {
    return this.waiting;
  }

  /** Braze answered 429: everyone waits `forMs`, and we slow down for a while. */
  rateLimited(forMs: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + forMs);
    this.factor = Math.max(0.1, this.factor * 0.7);
  }

  /** Reads X-RateLimit-Remaining/Reset (`resetInMs` from now): nothing left in this window → wait for the reset. */
  observe(remaining: number | null, resetInMs: number | null): void {
    if (remaining !== null && remaining <= 0 && resetInMs !== null)
      this.pausedUntil = Math.max(this.pausedUntil, this.now() + resetInMs);
    // Recover speed gradually after a 429.
    if (this.factor < 1) this.factor = Math.min(1, this.factor + 0.002);
  }

  get speed(): number {
    return this.factor;
  }

  /** Requests per second at full speed, on average over a window. */
  get requestsPerSecond(): number {
    return (this.limit * 1000) / this.windowMs;
  }

  /**
   * How long until this budget's requests leave no more in the window than the even pace would
   * have (what the next budget on the limit takes as used before it): the attempt keeps the limit
   * that long. Ask once the run's requests are done; any not yet gone count as going now.
   */
  msUntilEven(): number {
    const now = this.now();
    const step = this.windowMs / this.limit;
    const latest = this.sentAt.slice(Math.max(this.head, this.sentAt.length - this.limit)).sort((a, b) => b - a);
    let at = now;
    let k = 0;
    for (let i = 0; i < this.unwritten; i++) at = Math.max(at, now + ++k * step);
    for (const t of latest) at = Math.max(at, t + ++k * step);
    return at - now;
  }

  private async waitForSlot(): Promise<void> {
    for (;;) {
      const wait = this.waitBeforeStart(this.now());
      if (wait < 1) {
        this.unwritten++;
        return;
      }
      await this.sleep(wait);
    }
  }

  /** How long a request must wait before it may start: 0 when it may start now. */
  private waitBeforeStart(now: number): number {
    if (now < this.pausedUntil) return this.pausedUntil - now;
    this.forgetSentBefore(now - this.windowMs);
    // The even pace before the budget existed: its requests leave the window one a step from createdAt.
    const assumedLeft = Math.floor(((now - this.createdAt) * this.limit) / this.windowMs + 1e-9); // (rounding)
    const assumed = Math.max(0, this.limit - assumedLeft);
    const inWindow = this.unwritten + (this.sentAt.length - this.head) + assumed;
    if (inWindow < Math.max(1, Math.floor(this.limit * this.factor))) return 0;
    // Wait for the next to leave: the oldest sent or an assumed request; when every request in the
    // window is still unwritten (a budget smaller than the requests in flight), an even step.
    let leaves = Infinity;
    if (this.head < this.sentAt.length) leaves = this.sentAt[this.head]! + this.windowMs;
    if (assumed > 0) leaves = Math.min(leaves, this.createdAt + ((assumedLeft + 1) * this.windowMs) / this.limit);
    return Math.max(1, (leaves === Infinity ? now + this.windowMs / this.limit : leaves) - now);
  }

  private forgetSentBefore(t: number): void {
    while (this.head < this.sentAt.length && this.sentAt[this.head]! <= t) this.head++;
    if (this.head >= COMPACT_AFTER) {
      this.sentAt.splice(0, this.head);
      this.head = 0;
    }
  }
}
