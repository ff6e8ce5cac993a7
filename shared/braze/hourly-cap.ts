// A connection's hourly request cap, as one run's Braze client draws on it. The count is shared
// by every run on the connection, on every instance (a row in Table Storage, see
// store/connection-limits.ts); a run reserves requests from it in chunks, so sending costs one
// table round trip per chunk rather than one per request. Requests reserved and not sent are given
// back when the attempt ends. Hours are clock hours (UTC), as Braze's hourly limits reset on the hour.

const HOUR_MS = 3_600_000;

/** The shared count the cap draws on. */
export interface HourlyCounter {
  /** Reserves up to `want` requests of the hour starting at `hourMs`, never past `cap`: how many it got. */
  reserve(hourMs: number, want: number, cap: number): Promise<number>;
  /** Returns requests reserved in the hour `hourMs` and not sent. */
  giveBack(hourMs: number, count: number): Promise<void>;
  /**
   * The cap as it stands now (an Admin may have lowered or removed it while the run sends; null =
   * removed): read before each chunk is reserved, so a change applies from the next chunk on.
   */
  currentCap?(): Promise<number | null>;
}

/** No cap any more (removed while the attempt ran): requests are still counted, never refused. */
const NO_CAP = Number.MAX_SAFE_INTEGER;

/** Requests reserved at a time: a twentieth of the cap (so runs elsewhere get their share), 1 to 500. */
export const reservationChunk = (cap: number) => Math.max(1, Math.min(500, Math.floor(cap / 20)));

export class HourlyCap {
  /** The hour the reservation in hand belongs to. */
  private hour = -1;
  private inHand = 0;
  /**
   * Requests promised to buckets and not sent yet. A bucket's last objects may go in a batch with
   * the next bucket's, so the hand must cover every bucket under way, not only the newest.
   */
  private owed = 0;
  private refilling: Promise<void> | null = null;
  /** The hour whose cap this attempt found used up (the run waits for the next one). */
  private reachedIn: number | null = null;
  /** Nothing at all is left in hand or in the hour: requests still queued are not sent. */
  private spent = false;

  constructor(
    private readonly counter: HourlyCounter,
    /** Requests per clock hour for the connection, across every run (as the attempt started). */
    private capNow: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Requests per clock hour for the connection, across every run, as last read. */
  get cap(): number {
    return this.capNow;
  }

  /** The cap was reached: the attempt should end and the run wait for `resumesAt`. */
  get reached(): boolean {
    return this.reachedIn !== null;
  }

  /** Reached, and nothing left in hand: whatever still waits to be sent must not go. */
  get exhausted(): boolean {
    return this.spent;
  }

  /** When the hour whose cap was reached is over (ms), or null. */
  get resumesAt(): number | null {
    return this.reachedIn === null ? null : this.reachedIn + HOUR_MS;
  }

  /** One request may go (true), or the cap is reached for this hour (false, and `reached` from then on). */
  async take(): Promise<boolean> {
    for (;;) {
      if (this.spent) return false;
      const hour = this.currentHour();
      if (this.inHand > 0) {
        this.inHand--;
        this.owed = Math.max(0, this.owed - 1);
        return true;
      }
      this.refilling ??= this.refill(hour).finally(() => (this.refilling = null));
      await this.refilling;
    }
  }

  /**
   * Reserves what a bucket of the run needs before it goes (at most the whole cap, so a bucket
   * bigger than the cap still goes in a fresh hour): false = not this hour; the run stops before
   * the bucket, rather than mid-way, and goes on in the next hour. What it got stays in hand.
   */
  async reserveFor(requests: number): Promise<boolean> {
    for (;;) {
      if (this.reachedIn !== null) return false;
      await this.readCap();
      const hour = this.currentHour();
      const need = Math.min(requests, this.cap);
      const want = this.owed + need - this.inHand;
      if (want > 0) {
        const got = await this.counter.reserve(hour, want, this.cap);
        if (hour !== this.currentHour()) continue; // the hour turned meanwhile: that reservation is over
        this.inHand += got;
        if (got < want) {
          this.reachedIn = hour;
          return false;
        }
      }
      // Added to what is owed now, not to what was owed before the reservation: requests sent
      // meanwhile (take) paid part of it off, and must stay paid off.
      this.owed += need;
      return true;
    }
  }

  /** Whether any request is left this hour, reserving a chunk if none is in hand (the start of an attempt). */
  async available(): Promise<boolean> {
    if (this.reachedIn !== null) return false;
    this.currentHour();
    if (this.inHand === 0) {
      this.refilling ??= this.refill(this.hour).finally(() => (this.refilling = null));
      await this.refilling;
    }
    return this.reachedIn === null;
  }

  /** Gives back what is in hand (end of the attempt); a past hour's reservation has nothing to give back. */
  async release(): Promise<void> {
    await this.refilling?.catch(() => undefined);
    const count = this.inHand;
    this.inHand = 0;
    if (count > 0 && this.hour === this.currentHour()) await this.counter.giveBack(this.hour, count);
  }

  /** The current clock hour; a reservation from an earlier hour is dropped (that hour's count is over). */
  private currentHour(): number {
    const now = this.now();
    const hour = now - (now % HOUR_MS);
    if (hour !== this.hour) {
      this.hour = hour;
      this.inHand = 0;
    }
    return hour;
  }

  /** The cap as it stands now (one point read a chunk); a failed read keeps the one known. */
  private async readCap(): Promise<void> {
    if (!this.counter.currentCap) return;
    const cap = await this.counter.currentCap().catch(() => undefined);
    if (cap !== undefined) this.capNow = cap ?? NO_CAP;
  }

  private async refill(hour: number): Promise<void> {
    await this.readCap();
    const got = await this.counter.reserve(hour, reservationChunk(this.cap), this.cap);
    if (hour !== this.currentHour()) return; // the hour turned meanwhile: look again in the new one
    if (got > 0) this.inHand += got;
    else {
      this.reachedIn ??= hour;
      this.spent = true;
    }
  }
}
