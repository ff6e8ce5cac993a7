// Paces requests to one Braze workspace. Braze counts a workspace's /users/track requests per
// window (3,000 per 3 s by default, shared with the customer's other integrations); a run keeps at
// most 97 % of its connection's budget in any window and, within that, sends as soon as it can, so
// a run that waited (reading before its first request, a stall) catches up, at up to twice the pace.
// Also a cap on requests in flight, and a shared pause when Braze says 429 or that nothing remains
// in the window.
//
// A request counts from its slot until a window after its answer: Braze counted it somewhere in
// between, so no window of Braze's holds more than the count, however long the transit or Braze's
// queue (a burst's requests wait longer there than single ones: counted from when they were
// written, bursts put up to 3,102 requests in a sandbox window of 3,000).

/** Braze counts a workspace's /users/track requests per window of 3 seconds; a request budget is per window. */
export const BUDGET_WINDOW_MS = 3000;

export interface BudgetOptions {
  requestsPerWindow: number;
  windowMs?: number;
  maxInFlight?: number;
  /** Share of the budget used in any window (at least one request): room for requests this app does not know of. */
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

/**
 * How much faster than the pace a run may catch up. Unbounded, a burst used every connection the
 * budget allows at once: over https a 10 M first run peaked at 312 MB against 283 at the even pace.
 */
export const CATCH_UP_SPEED = 2;

/** Times older than this many are dropped from the front of the list at once (not one by one). */
const COMPACT_AFTER = 4096;

/** One request's place in the budget: `release` once it has been answered (or given up). */
export interface BudgetSlot {
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
  /** The even pace: one request a step. */
  private readonly stepMs: number;
  private readonly createdAt: number;
  /** When each request was answered, oldest first, from `head` on. */
  private readonly answeredAt: number[] = [];
  private head = 0;
  /** Requests with a slot, not answered yet: they count from now on. */
  private underWay = 0;
  private factor = 1;
  private pausedUntil = 0;
  /** Requests between acquire() and release(): waiting for a socket or a slot, or under way. */
  private inFlight = 0;
  /** Requests waiting for their slot (acquire called, not yet returned). */
  private waiting = 0;
  private readonly waiters: (() => void)[] = [];
  /** Slots are taken one after another, so one timer waits for the next, not every waiter. */
  private turn: Promise<void> = Promise.resolve();
  /** The earliest the next slot may start (CATCH_UP_SPEED). */
  private nextStart = -Infinity;
  private readonly maxInFlight: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: BudgetOptions) {
    this.windowMs = options.windowMs ?? BUDGET_WINDOW_MS;
    this.limit = Math.max(1, Math.floor(options.requestsPerWindow * (options.headroom ?? 0.97)));
    this.stepMs = this.windowMs / this.limit;
    // As many as the client's sockets at most: a request is in flight from the moment it waits for its
    // slot, so one that has its slot waits for a socket only while the connections the round trip
    // needs are all busy (connections-needed.ts); it counts until its answer either way.
    this.maxInFlight = options.maxInFlight ?? requestsInFlightFor(this.requestsPerSecond);
    this.now = options.now ?? monotonicNow;
    this.sleep = options.sleep ?? defaultSleep;
    this.createdAt = this.now();
  }

  /** Waits for a slot. */
  async acquire(): Promise<BudgetSlot> {
    this.waiting++;
    try {
      // A request that finished hands its place to the first waiting (release), so none overtakes them.
      if (this.inFlight >= this.maxInFlight || this.waiters.length > 0) await new Promise<void>((r) => this.waiters.push(r));
      else this.inFlight++;
      const slot = this.turn.then(() => this.waitForSlot());
      this.turn = slot.catch(() => undefined);
      await slot;
    } finally {
      this.waiting--;
    }
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.underWay--;
        this.answeredAt.push(this.now());
        const next = this.waiters.shift();
        if (next) next();
        else this.inFlight--;
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
   * that long. Ask once the run's requests are done; any still under way count as answered now.
   */
  msUntilEven(): number {
    const now = this.now();
    const step = this.stepMs;
    const latest = this.answeredAt.slice(Math.max(this.head, this.answeredAt.length - this.limit)).reverse();
    let at = now;
    let k = 0;
    for (let i = 0; i < this.underWay; i++) at = Math.max(at, now + ++k * step);
    for (const t of latest) at = Math.max(at, t + ++k * step);
    return at - now;
  }

  private async waitForSlot(): Promise<void> {
    for (;;) {
      const wait = this.waitBeforeStart(this.now());
      // Only a wait of 0 is the window's check passed: granted on any wait under a millisecond, 971
      // of a one-core first run's 13,334 slots started while the window was full.
      if (wait === 0) {
        this.underWay++;
        this.nextStart = Math.max(this.nextStart, this.now()) + this.stepMs / CATCH_UP_SPEED / this.factor;
        return;
      }
      await this.sleep(wait);
    }
  }

  /** How long a request must wait before it may start: 0 when it may start now. */
  private waitBeforeStart(now: number): number {
    if (now < this.pausedUntil) return this.pausedUntil - now;
    // A cap wait under a millisecond is not slept (a timer cannot): the slot may start that much
    // early, once the window has room.
    if (this.nextStart - now >= 1) return this.nextStart - now;
    this.forgetAnsweredBefore(now - this.windowMs);
    // The even pace before the budget existed: its requests leave the window one a step from createdAt.
    const assumedLeft = Math.floor(((now - this.createdAt) * this.limit) / this.windowMs + 1e-9); // (rounding)
    const assumed = Math.max(0, this.limit - assumedLeft);
    const inWindow = this.underWay + (this.answeredAt.length - this.head) + assumed;
    if (inWindow < Math.max(1, Math.floor(this.limit * this.factor))) return 0;
    // Wait for the next to leave: the oldest answered or an assumed request; when every request in
    // the window is still under way (a budget smaller than the requests in flight), an even step.
    let leaves = Infinity;
    if (this.head < this.answeredAt.length) leaves = this.answeredAt[this.head]! + this.windowMs;
    if (assumed > 0) leaves = Math.min(leaves, this.createdAt + ((assumedLeft + 1) * this.windowMs) / this.limit);
    return Math.max(1, (leaves === Infinity ? now + this.stepMs : leaves) - now);
  }

  private forgetAnsweredBefore(t: number): void {
    while (this.head < this.answeredAt.length && this.answeredAt[this.head]! <= t) this.head++;
    if (this.head >= COMPACT_AFTER) {
      this.answeredAt.splice(0, this.head);
      this.head = 0;
    }
  }
}
