// The transport to Braze's POST /users/track: one batch of ≤ 75 attributes objects in, one outcome
// per object out. Retries 5xx/timeouts/resets with backoff and jitter, waits out 429s as the
// headers say, splits a 400 batch to isolate the bad objects, maps 2xx errors[].index back onto
// the objects actually sent, and stops the run on 401/403 naming the permission.
import { MAX_OBJECTS_PER_REQUEST, type BrazeObjectJson, type Outcome } from './batch';
import type { HourlyCap } from './hourly-cap';
import { numberHeader, observeRateLimit, type ObservedRateLimit } from './rate-limit-headers';
import { ConnectionsNeeded } from './connections-needed';
import { requestsInFlightFor, type RequestBudget } from './request-budget';
import { Transport, type PostTransport, type TransportResponse } from './transport';

/** Halvings of a refused batch at most: 75 objects stand alone after 7. */
const MAX_SPLIT_DEPTH = 7;

/** One shared answer for every object delivered: a million of them would otherwise be a million objects. */
const SENT: Outcome = Object.freeze({ status: 'sent' });

const BODY_OPEN = Buffer.from('{"attributes":[');
const BODY_CLOSE = Buffer.from(']}');
const COMMA = 0x2c;

/**
 * Request bodies, built in buffers used again and again. A fresh buffer per request (~14 KB at 75
 * objects, 1,000 times a second) counts as new external memory in V8, and that alone started a
 * full garbage collection of the main thread several times a second.
 */
class BodyBuffers {
  /** Room for 75 objects of ~400 bytes; a bigger body gets a buffer of its own. */
  static readonly SIZE = 32 * 1024;
  private readonly free: Buffer[] = [];

  /** `kept`: free buffers kept, as many as requests may be in flight at once. */
  constructor(private readonly kept: number) {}

  /** The body for a batch of objects, and the function to call once it will not be sent again. */
  build(objects: BrazeObjectJson[]): { body: Buffer; done: () => void } {
    const size = BODY_OPEN.length + BODY_CLOSE.length + objects.reduce((n, o) => n + o.length + 1, -1);
    const pooled = size <= BodyBuffers.SIZE;
    const buffer = pooled ? (this.free.pop() ?? Buffer.allocUnsafeSlow(BodyBuffers.SIZE)) : Buffer.allocUnsafe(size);
    buffer.set(BODY_OPEN);
    let at = BODY_OPEN.length;
    objects.forEach((o, i) => {
      if (i > 0) buffer[at++] = COMMA;
      buffer.set(o, at);
      at += o.length;
    });
    buffer.set(BODY_CLOSE, at);
    return {
      body: buffer.subarray(0, size),
      done: () => (pooled && this.free.length < this.kept ? void this.free.push(buffer) : undefined),
    };
  }
}

/** 401/403/404: nothing will work until a person fixes the connection. */
export class BrazeFatalError extends Error {
  constructor(
    message: string,
    readonly httpStatus: number,
  ) {
    super(message);
    this.name = 'BrazeFatalError';
  }
}

export interface RequestCounts {
  sent: number;
  retried: number;
  rateLimited: number;
}

export interface BrazeClientOptions {
  baseUrl: string;
  apiKey: string;
  budget: RequestBudget;
  maxAttempts?: number;
  timeoutMs?: number;
  /** Longest total wait on 429s for one batch before its objects count as failed. */
  maxRateLimitWaitMs?: number;
  backoffBaseMs?: number;
  /** Kept-alive connections at most (requests beyond wait for one); by default requestsInFlightFor the budget. */
  maxSockets?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Where requests go; by default HTTP(S) to `baseUrl` with kept-alive connections. */
  transport?: PostTransport;
  /**
   * Asked before each request goes out: true = the run is stopping (cancel, lease lost). Batches
   * still waiting for the budget are then not sent (their objects are `failed`, to be sent by a
   * later run); requests already out are answered as usual.
   */
  shouldStop?: () => boolean;
  /** The connection's hourly request cap: each request takes one; once it is reached, nothing more is sent. */
  hourlyCap?: HourlyCap;
}

/** How the reason of an object that never went starts (a stop, the hourly cap). */
const NOT_SENT = 'not sent:';
/** Distinct reasons for failed objects a client keeps (BrazeClient.failureReasons). */
export const MAX_FAILURE_REASONS = 5;
/** A kept reason is cut to this many characters. */
const MAX_REASON_CHARS = 150;
/** Keys shorter than this are not looked for in Braze's answers (Braze's REST keys are UUIDs: 36). */
const MIN_MASKED_KEY_CHARS = 8;
/** What an object never sent because its run stopped counts as: not delivered, sent by a later run. */
export const NOT_SENT_STOPPING: Outcome = Object.freeze({ status: 'failed', reason: `${NOT_SENT} the run was stopped` });
/** Not sent because the connection's hourly request cap was reached: a later attempt sends it. */
export const NOT_SENT_CAPPED: Outcome = Object.freeze({
  status: 'failed',
  reason: `${NOT_SENT} the connection's hourly request cap was reached`,
});

function describeNetworkError(e: unknown): string {
  const err = e as { code?: string; message?: string };
  if (err?.code === 'ETIMEDOUT') return 'timed out';
  return err?.code ?? err?.message ?? 'network error';
}

/** The reasons an earlier attempt of the run recorded, then this client's: the first MAX_FAILURE_REASONS distinct ones. */
export function failureReasonsAfter(earlier: readonly string[] | undefined, braze: BrazeClient): string[] {
  return [...new Set([...(earlier ?? []), ...braze.failureReasons])].slice(0, MAX_FAILURE_REASONS);
}

export class BrazeClient {
  readonly requests: RequestCounts = { sent: 0, retried: 0, rateLimited: 0 };
  /** When the first request went out (Date.now()), null: none yet. */
  firstRequestAt: number | null = null;
  /**
   * Why objects this client sent were not taken (failed: Braze down, a request refused as a whole, an
   * answer it could not read), the first few distinct reasons: what a run's failures are reported with.
   */
  readonly failureReasons = new Set<string>();
  /** The reasons behind failureReasons, as the outcomes gave them. */
  private readonly reasonsSeen = new Set<string>();
  /** Objects not sent because the connection's hourly cap ran out (the only failures the cap may be blamed for). */
  notSentCapped = 0;
  /** Requests this client keeps in flight at most (its sockets): what its senders keep under way. */
  readonly requestsInFlight: number;
  /** What Braze's X-RateLimit-* headers said last (null until an answer carried them). */
  rateLimit: ObservedRateLimit | null = null;
  private readonly url: string;
  private readonly transport: PostTransport;
  private readonly maxAttempts: number;
  private readonly timeoutMs: number;
  private readonly maxRateLimitWaitMs: number;
  private readonly backoffBaseMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly bodies: BodyBuffers;

  /** The workspace endpoint this client writes to. */
  get destination(): string {
    return this.options.baseUrl;
  }

  constructor(private readonly options: BrazeClientOptions) {
    this.url = `${options.baseUrl.replace(/\/$/, '')}/users/track`;
    this.requestsInFlight = options.maxSockets ?? requestsInFlightFor(options.budget.requestsPerSecond);
    this.transport =
      options.transport ??
      new Transport(this.url, this.requestsInFlight, { needed: new ConnectionsNeeded(options.budget.requestsPerSecond) });
    this.bodies = new BodyBuffers(this.requestsInFlight);
    this.maxAttempts = options.maxAttempts ?? 6;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxRateLimitWaitMs = options.maxRateLimitWaitMs ?? 15 * 60_000;
    this.backoffBaseMs = options.backoffBaseMs ?? 500;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Requests per second this client may send at full speed (the connection's budget). */
  get requestsPerSecond(): number {
    return this.options.budget.requestsPerSecond;
  }

  /** Requests waiting for their slot in the connection's budget (RequestBudget.waitingForSlot). */
  get requestsWaiting(): number {
    return this.options.budget.waitingForSlot;
  }

  /** How long until the limit may pass to another run without this client's requests crowding Braze's window (RequestBudget.msUntilEven). */
  msUntilEven(): number {
    return this.options.budget.msUntilEven();
  }

  /** Closes the kept-alive connections (end of a run). */
  close(): void {
    this.transport.close();
  }

  /** Sends one batch; resolves with an outcome per object, in order. Throws BrazeFatalError. */
  async track(objects: BrazeObjectJson[]): Promise<Outcome[]> {
    const outcomes = await this.send(objects, 0);
    for (const o of outcomes) {
      // Counted as they came (two that read alike once cut keep one place between them): bounded either way.
      if (this.reasonsSeen.size >= MAX_FAILURE_REASONS) break;
      // A stop or the hourly cap is said by the run itself; these are Braze's (or the network's).
      if (o.status !== 'failed' || o.reason.startsWith(NOT_SENT) || this.reasonsSeen.has(o.reason)) continue;
      this.reasonsSeen.add(o.reason);
      this.failureReasons.add(this.recordable(o.reason));
    }
    return outcomes;
  }

  /**
   * A failure's reason as a run record may keep it: it can quote Braze's answer (or a proxy's page in
   * its place), so one line (control, format and separator characters made spaces), at most
   * MAX_REASON_CHARS characters. The key is gone from the answer already (withoutKey).
   */
  private recordable(reason: string): string {
    const line = [...reason.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]+/gu, ' ')];
    return line.length > MAX_REASON_CHARS ? `${line.slice(0, MAX_REASON_CHARS - 1).join('')}…` : line.join('');
  }

  /** `text` with the API key (a real one: a few characters could be any word's) replaced by [key]. */
  private withoutKey(text: string): string {
    const key = this.options.apiKey;
    return key.length >= MIN_MASKED_KEY_CHARS && text.includes(key) ? text.split(key).join('[key]') : text;
  }

  /**
   * Why a request may not go (the run stops, or the hourly cap is spent): every object's outcome;
   * null = it may go. The cap's doing is said so and counted (only these failures are the cap's).
   */
  private async notSent(count: number): Promise<Outcome[] | null> {
    const cap = this.options.hourlyCap;
    let outcome: Outcome;
    if (this.options.shouldStop?.()) outcome = cap?.exhausted ? NOT_SENT_CAPPED : NOT_SENT_STOPPING;
    else if (cap && !(await cap.take())) outcome = NOT_SENT_CAPPED;
    else return null;
    if (outcome === NOT_SENT_CAPPED) this.notSentCapped += count;
    return new Array<Outcome>(count).fill(outcome);
  }

  /** One request (or, refused, the requests that isolate the bad objects); `depth` = halvings so far. */
  private async send(objects: BrazeObjectJson[], depth: number): Promise<Outcome[]> {
    if (objects.length === 0) return [];
    if (objects.length > MAX_OBJECTS_PER_REQUEST) throw new Error(`at most ${MAX_OBJECTS_PER_REQUEST} objects per request`);
    // Built once the budget lets the first attempt go: batches queued behind the budget hold no body.
    const built: { body: Buffer; done: () => void }[] = [];
    try {
      return await this.attempts(objects, () => (built[0] ??= this.bodies.build(objects)).body, depth);
    } finally {
      built[0]?.done();
    }
  }

  /** Sends one batch's body until Braze answers for it (or attempts run out). */
  private async attempts(objects: BrazeObjectJson[], body: () => Buffer, depth: number): Promise<Outcome[]> {
    let attempt = 0;
    let rateLimitedWait = 0;
    let lastProblem = '';
    let waitedForWindow = false;
    for (;;) {
      if (attempt >= this.maxAttempts)
        return objects.map(() => ({ status: 'failed', reason: `Braze unavailable after ${attempt} attempts (${lastProblem})` }));
      if (waitedForWindow) {
        this.requests.retried++;
        waitedForWindow = false; // the budget's pause did the waiting
      } else if (attempt > 0) {
        this.requests.retried++;
        const cap = Math.min(30_000, this.backoffBaseMs * 2 ** (attempt - 1));
        await this.sleep(cap / 2 + Math.random() * (cap / 2)); // backoff with jitter
      }
      attempt++;
      const slot = await this.options.budget.acquire();
      const notSent = await this.notSent(objects.length).catch((e: unknown) => {
        slot.release(); // the hourly count could not be read: the slot goes back
        throw e;
      });
      if (notSent) {
        slot.release();
        return notSent;
      }
      let res: TransportResponse;
      try {
        this.firstRequestAt ??= Date.now();
        this.requests.sent++;
        res = await this.transport.post(
          body(),
          { Authorization: `Bearer ${this.options.apiKey}`, 'Content-Type': 'application/json' },
          this.timeoutMs,
        );
      } catch (e) {
        lastProblem = describeNetworkError(e);
        continue;
      } finally {
        slot.release();
      }
      // What Braze (or a proxy in its place) says may end up in reasons a run records: never the key.
      const text = this.withoutKey(res.text);
      const resetSec = this.observeWindow(res);

      if (res.status === 429) {
        this.requests.rateLimited++;
        attempt--; // waiting for the window is not a failed attempt
        const retryAfter = numberHeader(res, 'x-ratelimit-retry-after') ?? numberHeader(res, 'retry-after');
        const until =
          retryAfter !== null ? Date.now() + retryAfter * 1000 : resetSec !== null ? resetSec * 1000 : Date.now() + 1000;
        const wait = Math.max(50, until - Date.now());
        rateLimitedWait += wait;
        if (rateLimitedWait > this.maxRateLimitWaitMs) {
          return objects.map(() => ({ status: 'failed', reason: 'Braze kept answering 429 (rate limited) for too long' }));
        }
        this.options.budget.rateLimited(wait);
        waitedForWindow = true;
        continue;
      }
      if (res.status === 401)
        throw new BrazeFatalError(
          'Braze rejected the API key (401 Unauthorized): the key is invalid or was revoked; update the connection with a valid REST API key that has the users.track permission',
          401,
        );
      if (res.status === 403)
        throw new BrazeFatalError(
          'Braze refused the request (403 Forbidden): the REST API key lacks the users.track permission; add users.track to the key in Braze (Settings → API Keys)',
          403,
        );
      if (res.status === 404)
        throw new BrazeFatalError(
          `Braze answered 404 for ${new URL(this.url).host}/users/track: check the connection's REST endpoint`,
          404,
        );
      if (res.status === 400 || res.status === 413) return this.isolate(objects, res.status, text, depth);
      if (res.status >= 200 && res.status < 300) return this.outcomes(objects, text);
      lastProblem = `HTTP ${res.status}`;
    }
  }

  /** Braze's word on its window: kept for the connection, and the budget waits when nothing remains. Returns X-RateLimit-Reset. */
  private observeWindow(res: TransportResponse): number | null {
    this.rateLimit = observeRateLimit(this.rateLimit, res);
    const resetSec = numberHeader(res, 'x-ratelimit-reset');
    const remaining = numberHeader(res, 'x-ratelimit-remaining');
    this.options.budget.observe(remaining, resetSec === null ? null : resetSec * 1000 - Date.now());
    return resetSec;
  }

  /**
   * A refused batch: halve it until the objects Braze refuses stand alone (`rejected`). But a request
   * refused as a whole (a proxy, a workspace-level refusal, a bad shape) says nothing about its
   * objects: splitting it down would cost ~2 requests per object and call every one of them
   * `rejected`, never to be tried again. So the first split first probes one object of each half
   * alone; refused both, for the same reason as the batch, the refusal is the request's: every
   * object is `failed` (retried by the next run). Past MAX_SPLIT_DEPTH halvings, likewise.
   */
  private async isolate(objects: BrazeObjectJson[], status: number, text: string, depth: number): Promise<Outcome[]> {
    const reason = `${status}: ${brazeMessage(text)}`;
    const refusedAlone = `Braze refused the object (${reason})`;
    const refusedAlike = (o: Outcome) => o.status === 'rejected' && o.reason === refusedAlone;
    if (objects.length === 1) return [{ status: 'rejected', reason: refusedAlone }];
    const wholeRequest = (): Outcome[] =>
      objects.map(() => ({
        status: 'failed',
        reason: `Braze refused the request as a whole (${reason}); not counted as rejected: sent again by the next run`,
      }));
    if (depth >= MAX_SPLIT_DEPTH) return wholeRequest();
    const mid = Math.ceil(objects.length / 2);
    if (depth === 0 && objects.length >= 4) {
      const [p, q] = await Promise.all([this.send([objects[0]!], depth + 1), this.send([objects[mid]!], depth + 1)]);
      if (refusedAlike(p[0]!) && refusedAlike(q[0]!)) return wholeRequest();
    }
    const [a, b] = await Promise.all([this.send(objects.slice(0, mid), depth + 1), this.send(objects.slice(mid), depth + 1)]);
    const out = [...a, ...b];
    // Every object of the batch refused, each for the batch's own reason: that was the request, not them.
    if (depth === 0 && out.every(refusedAlike)) return wholeRequest();
    return out;
  }

  private outcomes(objects: BrazeObjectJson[], text: string): Outcome[] {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    // Anything but an object whose errors (if any) are an array of objects is not an answer we can read.
    const body =
      typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
        ? (parsed as { message?: unknown; errors?: unknown })
        : null;
    const errors = body?.errors ?? [];
    if (!body || !Array.isArray(errors) || errors.some((e) => typeof e !== 'object' || e === null)) {
      return objects.map(() => ({
        status: 'failed',
        reason: 'Braze answered 2xx with an unreadable body; not counted as delivered',
      }));
    }
    if (body.message !== 'success') {
      return objects.map(() => ({
        status: 'failed',
        reason: `Braze answered "${String(body.message).slice(0, 200)}"; not counted as delivered`,
      }));
    }
    const out: Outcome[] = objects.map(() => SENT);
    for (const err of errors as { type?: unknown; input_array?: unknown; index?: unknown }[]) {
      const index = err.index;
      const inArray = err.input_array === undefined || err.input_array === 'attributes';
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= objects.length || !inArray) {
        // An error we cannot pin on one object puts the whole batch in doubt.
        return objects.map(() => ({
          status: 'failed',
          reason: `Braze reported an error without a usable index (${String(err.type).slice(0, 200)})`,
        }));
      }
      out[index] = { status: 'rejected', reason: `Braze: ${String(err.type ?? 'error').slice(0, 300)}` };
    }
    return out;
  }
}

function brazeMessage(text: string): string {
  try {
    const m = (JSON.parse(text) as { message?: unknown }).message;
    return typeof m === 'string' ? m.slice(0, 300) : 'no message';
  } catch {
    return text.slice(0, 200) || 'no message';
  }
}
