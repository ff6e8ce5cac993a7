// How many connections to Braze a pace needs (Little's law): the requests a second of the budget's
// even pace times the usual round trip lately, 2.5 times over, and a few spare: a run catching up
// goes twice the pace, and the mean round trip is above the usual one. The usual round trip is the
// lower of the medians of the last two seconds that had answers, not the longest: a round trip is
// timed on the app's main thread, so a pause there (or on the machine that answers) makes every
// answer under way look slow at once, and a burst after it would open connections for a network
// that is not slower. A network that does get slower is followed within two to three seconds (round
// trips well under a second; a longer one, within a few of them). Too few connections meanwhile
// only slow the run: the budget's slots wait for them.
// Opened beyond the need, by the bursts of a run catching up on a fast network, a connection only
// costs memory: each kept-alive TLS connection holds ~100–150 KB of Node's and OpenSSL's buffers
// (docs/performance.md).
import { CATCH_UP_SPEED } from './request-budget';

/** Round trips are taken a second at a time, each second's median kept. */
const PERIOD_MS = 1000;
/** Round trips kept for a period's median at most: beyond (a pace above ~1,600 a second catching up), its first ones. */
const MAX_SAMPLES = 4096;
/** The budget's catching-up speed, and a quarter more for answers slower than the median. */
const OVER_THE_PACE = CATCH_UP_SPEED * 1.25;
/** Above the estimate, for the requests written meanwhile and a busy event loop's jitter. */
const SPARE = 8;
/**
 * Until a first answer, when the round trip is not known yet. Uncapped, a one-core first run over
 * https opened every connection the budget allows (243) before its first answer, whose handshakes,
 * queued at the server ahead of its requests, were what delayed that answer: its first 0.5 s of
 * sending took 63–96 requests instead of 227–273, and it peaked ~25 MB higher (docs/performance.md).
 * With Braze 100 ms away, 32 connections carry the first round trips as fast.
 */
const BEFORE_AN_ANSWER = 32;

export class ConnectionsNeeded {
  private samples: number[] = [];
  /** The medians of the last two periods that had answers, the later first (-1: none yet). */
  private last = -1;
  private before = -1;
  private periodStart: number;
  /** Until a period had answers: the current one's median, and the samples it was taken from. */
  private early = { median: -1, from: 0 };

  constructor(
    private readonly requestsPerSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(requestsPerSecond > 0)) throw new Error(`a pace must be above 0 requests a second (${requestsPerSecond})`);
    this.periodStart = this.now();
  }

  /** A request's round trip, from its write to its answer whole (on a new connection, from its handshake's end). */
  roundTrip(ms: number): void {
    this.rotate();
    if (this.samples.length < MAX_SAMPLES) this.samples.push(ms);
  }

  /**
   * The connections the pace needs; until a first answer, when the round trip is not known, a few
   * (BEFORE_AN_ANSWER).
   */
  get count(): number {
    this.rotate();
    const roundTripMs = this.last < 0 ? this.medianSoFar() : this.before < 0 ? this.last : Math.min(this.last, this.before);
    if (roundTripMs < 0) return BEFORE_AN_ANSWER;
    return Math.ceil((OVER_THE_PACE * this.requestsPerSecond * roundTripMs) / 1000) + SPARE;
  }

  /** The first period's median so far, taken again only once its samples grew by a quarter (a burst asks often). */
  private medianSoFar(): number {
    const n = this.samples.length;
    if (n === 0) return -1;
    if (this.early.median < 0 || n >= this.early.from * 1.25) this.early = { median: median(this.samples), from: n };
    return this.early.median;
  }

  private rotate(): void {
    const at = this.now();
    const periods = Math.floor((at - this.periodStart) / PERIOD_MS);
    if (periods === 0) return;
    // A quiet period keeps what was known: nothing says the network changed meanwhile.
    if (this.samples.length > 0) [this.last, this.before] = [median(this.samples), this.last];
    this.samples = [];
    this.early = { median: -1, from: 0 };
    this.periodStart += periods * PERIOD_MS;
  }
}

function median(values: number[]): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[sorted.length >> 1]!;
}
