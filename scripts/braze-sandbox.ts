// A Braze-compatible sandbox: a real HTTP server on loopback that implements POST /users/track as
// Braze documents it (../shared/reference/braze-users-track.md), keeps profiles in memory, and
// can be told to misbehave. Used by tests, the demo and the benchmark; never by production code.
//
//   POST /users/track                 Bearer key (401 unknown, 403 without users.track, checked before the
//                                     body); ≤ 75 objects; one identifier per object; null removes; an
//                                     empty request is a 400, as Braze answers it
//                                     `_update_existing_only: true` (the default for user_alias) never creates a user
//   POST /users/delete                { external_ids, user_aliases, braze_ids } (≤ 50), as Braze documents it: the
//                                     users are gone; a later update-only object for them changes nothing
//   GET  /segments/list?page=N        the workspace's segments (key needs segments.list), as Braze documents it
//   GET  /sandbox/profiles            every stored profile (identifier + attributes)
//   GET  /sandbox/stats               request counts by status, objects processed, concurrency seen;
//                                     ?busiestSince=<epoch ms>: the most requests in any window since then,
//                                     the arrivals in each 0.5 s of the first 3 s from the first since then,
//                                     and the most /users/track connections open at once since then
//   POST /sandbox/faults              { rateLimitForMs, fail5xx, slowMs, dropConnections, revokeKey, badObjectMarker,
//                                       objectErrorMarker, refuseEveryRequest, rateLimit }
// Rate-limit headers as Braze sends them: X-RateLimit-Limit / -Remaining / -Reset on answers within
// the limit; on a 429, X-RateLimit-Retry-After in their place.
//   POST /sandbox/reset               forget profiles, stats and faults
//   /users/export/segment, /users/export/ids and their admin routes: braze-sandbox-export.ts
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { LOCALHOST_CERT, LOCALHOST_KEY } from './localhost-tls';
import { readCappedBody } from './capped-body';
import { SandboxUserExports, type SandboxProfile } from './braze-sandbox-export';

export interface SandboxOptions {
  port?: number;
  /**
   * Serves https at `https://localhost:<port>` with the loopback certificate (localhost-tls.ts), as
   * Braze serves https: what TLS costs both ends is then measured (the benchmark's `--tls`).
   */
  tls?: boolean;
  /** Valid REST API keys and whether each has the users.track permission. */
  keys?: Record<string, KeyGrant>;
  /** The workspace's segments, as GET /segments/list shows them. */
  segments?: { id: string; name: string }[];
  /** Requests allowed per window (Braze default 3,000 per 3 s). */
  rateLimit?: number;
  rateWindowMs?: number;
  /** Keep profiles (off for very large benchmarks: counts only). */
  storeProfiles?: boolean;
}

/** What a REST API key may do. */
export interface KeyGrant {
  usersTrack: boolean;
  segmentsList?: boolean;
  usersDelete?: boolean;
  usersExportSegment?: boolean;
  usersExportIds?: boolean;
}

export interface Faults {
  /** Answer every request with 429 until this many ms from now. */
  rateLimitForMs?: number;
  /** Answer the next N requests with 503. */
  fail5xx?: number;
  /** Delay every answer by this many ms. */
  slowMs?: number;
  /** Destroy the socket of the next N requests without answering. */
  dropConnections?: number;
  /** Treat every key as invalid (401) from now on. */
  revokeKey?: boolean;
  /** Answer 400 for any batch holding an object whose JSON contains this text. */
  badObjectMarker?: string;
  /**
   * Answer every request 400 with this message, whatever it holds — as a proxy, a workspace-level
   * refusal or a malformed request gets from Braze: the refusal is the request's, not its objects'.
   */
  refuseEveryRequest?: string;
  /** Report a per-object error (2xx with errors[].index) for objects whose JSON contains this text. */
  objectErrorMarker?: string;
  /** The workspace's limit per window from now on, reported and enforced (as a contract below the default would be). */
  rateLimit?: number;
}

export type { SandboxProfile };

export interface SandboxStats {
  requests: number;
  byStatus: Record<string, number>;
  objectsProcessed: number;
  /** Objects in requests taken for processing, those refused one by one (errors[].index) included. */
  objectsReceived: number;
  maxConcurrent: number;
  /** Objects for a user that arrived while another request for that user was in flight. */
  concurrentUserWrites: number;
  /** TCP connections accepted: far fewer than requests when clients keep connections alive. */
  connections: number;
  /** Of those, the ones that carried a /users/track request (not a test's or the bench's own calls). */
  trackConnections: number;
  /** Update-only objects (`_update_existing_only: true`) for users that do not exist: skipped, nothing created. */
  skippedUpdateOnly: number;
  /** Users removed through POST /users/delete (or `deleteUser`). */
  deleted: number;
}

/** The REST API key the sandbox knows by default, with users.track. */
export const SANDBOX_KEY = 'sandbox-key';
/** A key the sandbox knows by default without the users.track permission: Braze answers it 403. */
export const SANDBOX_KEY_WITHOUT_USERS_TRACK = 'sandbox-key-without-users-track';
/** A key with users.track but not segments.list: the export form cannot list its segments. */
export const SANDBOX_KEY_WITHOUT_SEGMENTS_LIST = 'sandbox-key-without-segments-list';
/** A key with users.track only, as most integrations' keys: it cannot read users back. */
export const SANDBOX_KEY_WITHOUT_EXPORT = 'sandbox-key-without-export';

const IDENTIFIER_KEYS = ['external_id', 'user_alias', 'braze_id'] as const;
const MAX_OBJECTS = 75;
const MAX_BODY = 4 * 1024 * 1024;
const MAX_OBJECT_BYTES = 100 * 1024;

const emptyStats = (): SandboxStats => ({
  requests: 0,
  byStatus: {},
  objectsProcessed: 0,
  objectsReceived: 0,
  maxConcurrent: 0,
  concurrentUserWrites: 0,
  connections: 0,
  trackConnections: 0,
  skippedUpdateOnly: 0,
  deleted: 0,
});

export class BrazeSandbox {
  readonly profiles = new Map<string, SandboxProfile>();
  stats: SandboxStats = emptyStats();
  faults: Faults & { rateLimitedUntil?: number } = {};
  private server?: Server;
  private readonly tls: boolean;
  /** Connections that carried a /users/track request (stats.trackConnections). */
  private trackSockets = new WeakSet<object>();
  /** Each change of how many of those are open: [epoch ms, open after it] (the most open at once since a time). */
  private trackOpen: [number, number][] = [];
  /** Sockets counted in trackOpen (kept across a reset, which forgets trackSockets while they stay open). */
  private countedOpen = new WeakSet<object>();
  private inFlight = 0;
  /** When each /users/track request arrived, to measure the busiest window. */
  private requestTimes: number[] = [];
  private inFlightUsers = new Map<string, number>();
  private window = { start: 0, used: 0 };
  private readonly keys: Record<string, KeyGrant>;
  private readonly segments: { id: string; name: string }[];
  private readonly defaultLimit: number;
  private readonly windowMs: number;
  private readonly store: boolean;
  url = '';
  /** Reading users back: /users/export/segment and /users/export/ids, segments by filters. */
  readonly exports = new SandboxUserExports({
    grant: (req, permission) => {
      const key = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const grant = key ? this.keys[key] : undefined;
      if (!grant || this.faults.revokeKey) return { status: 401, message: 'Invalid API key' };
      const name = permission === 'usersExportSegment' ? 'users.export.segment' : 'users.export.ids';
      return grant[permission] ? null : { status: 403, message: `This API key does not have permission ${name}` };
    },
    reply: (res, status, body, headers) => this.reply(res, status, body, headers, false),
    readJson: async (req) => {
      try {
        return JSON.parse((await this.readBody(req))?.toString('utf8') || 'null') as Record<string, unknown> | null;
      } catch {
        return null;
      }
    },
    profiles: this.profiles,
    url: () => this.url,
  });

  constructor(options: SandboxOptions = {}) {
    this.keys = options.keys ?? {
      [SANDBOX_KEY]: { usersTrack: true, segmentsList: true, usersDelete: true, usersExportSegment: true, usersExportIds: true },
      [SANDBOX_KEY_WITHOUT_EXPORT]: { usersTrack: true, segmentsList: true },
      [SANDBOX_KEY_WITHOUT_USERS_TRACK]: { usersTrack: false },
      [SANDBOX_KEY_WITHOUT_SEGMENTS_LIST]: { usersTrack: true, segmentsList: false },
    };
    this.segments = options.segments ?? [
      { id: '0000-0000-0000', name: 'CI: high value customers' },
      { id: '1111-1111-1111', name: 'CI: churn risk' },
    ];
    this.defaultLimit = options.rateLimit ?? 3000;
    this.windowMs = options.rateWindowMs ?? 3000;
    this.store = options.storeProfiles ?? true;
    this.tls = options.tls ?? false;
  }

  async start(port = 0): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) this.reply(res, 500, { message: 'Internal Server Error' });
      });
    };
    this.server = this.tls
      ? createTlsServer({ keepAliveTimeout: 30_000, cert: LOCALHOST_CERT, key: LOCALHOST_KEY }, handler)
      : createServer({ keepAliveTimeout: 30_000 }, handler);
    this.server.on('connection', () => this.stats.connections++);
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    const address = this.server.address();
    const origin = this.tls ? 'https://localhost' : 'http://127.0.0.1';
    this.url = `${origin}:${typeof address === 'object' && address ? address.port : port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    const closed = new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  /** Requests per window: the constructor's, or the one `setFaults({ rateLimit })` gave. */
  private get limit(): number {
    return this.faults.rateLimit ?? this.defaultLimit;
  }

  setFaults(faults: Faults): void {
    this.faults = { ...this.faults, ...faults };
    if (faults.rateLimitForMs) this.faults.rateLimitedUntil = Date.now() + faults.rateLimitForMs;
  }

  /** The most /users/track requests that arrived within any `windowMs` (sliding), since the last reset or `sinceMs`. */
  maxRequestsInWindow(windowMs = this.windowMs, sinceMs = 0): number {
    let most = 0;
    for (let i = 0, j = 0; i < this.requestTimes.length; i++) {
      if (this.requestTimes[i]! < sinceMs) {
        j = i + 1;
        continue;
      }
      while (this.requestTimes[i]! - this.requestTimes[j]! >= windowMs) j++;
      most = Math.max(most, i - j + 1);
    }
    return most;
  }

  /**
   * /users/track arrivals in each `binMs` of the first `bins × binMs` from the first request at or
   * after `sinceMs` (empty: none came): how fast a run's sending started. Braze's window slides, so
   * what a run did not send in its first window it never makes up (docs/performance.md).
   */
  arrivalsFromFirst(sinceMs: number, binMs = 500, bins = 6): number[] {
    const first = this.requestTimes.find((t) => t >= sinceMs);
    if (first === undefined) return [];
    const counts = new Array<number>(bins).fill(0);
    for (const t of this.requestTimes) {
      const bin = Math.floor((t - first) / binMs);
      if (t >= first && bin < bins) counts[bin]!++;
    }
    return counts;
  }

  reset(): void {
    this.requestTimes = [];
    this.profiles.clear();
    this.stats = emptyStats();
    this.trackSockets = new WeakSet();
    this.faults = {};
    this.window = { start: 0, used: 0 };
    this.exports.reset();
  }

  /** Profiles keyed like Braze would find them: `external_id:<id>` or `alias:<label>:<name>`. */
  profileList(): SandboxProfile[] {
    return [...this.profiles.values()];
  }

  /**
   * Deletes a user as Braze's /users/delete does (an erasure request included), by its key
   * (`external_id:<id>`, `alias:<label>:<name>`, `braze_id:<id>`). True when it existed.
   */
  deleteUser(userKey: string): boolean {
    const existed = this.profiles.delete(userKey);
    if (existed) this.stats.deleted++;
    return existed;
  }

  private reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, counted = true): void {
    if (counted) this.stats.byStatus[status] = (this.stats.byStatus[status] ?? 0) + 1;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  private readBody(req: IncomingMessage): Promise<Buffer | null> {
    return readCappedBody(req, MAX_BODY);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const pathname = url.includes('?') ? url.slice(0, url.indexOf('?')) : url;
    if (await this.exports.handle(req, res, pathname)) return;
    if (pathname.startsWith('/sandbox/')) return this.control(req, res, pathname);
    if (pathname === '/segments/list' && req.method === 'GET') return this.segmentsList(req, res, url);
    if (pathname === '/users/delete' && req.method === 'POST') return this.usersDelete(req, res);
    if (pathname !== '/users/track' || req.method !== 'POST') {
      return this.reply(res, 404, { message: 'Not Found' }, {}, false);
    }
    this.stats.requests++;
    this.requestTimes.push(Date.now());
    this.inFlight++;
    this.stats.maxConcurrent = Math.max(this.stats.maxConcurrent, this.inFlight);
    try {
      await this.track(req, res);
    } finally {
      this.inFlight--;
    }
  }

  /**
   * GET /segments/list?page=N as Braze documents it: 100 segments a page, `{message, segments: [{id,
   * name, analytics_tracking_enabled, tags}]}`; the key needs segments.list (403 otherwise).
   */
  private segmentsList(req: IncomingMessage, res: ServerResponse, url: string): void {
    const key = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const grant = key ? this.keys[key] : undefined;
    if (!grant || this.faults.revokeKey) return this.reply(res, 401, { message: 'Invalid API key' });
    if (!grant.segmentsList) return this.reply(res, 403, { message: 'This API key does not have permission segments.list' });
    const page = Number(new URL(url, 'http://sandbox').searchParams.get('page') ?? '0');
    const segments = this.segments
      .slice(page * 100, page * 100 + 100)
      .map((s) => ({ ...s, analytics_tracking_enabled: false, tags: [] }));
    this.reply(res, 200, { message: 'success', segments });
  }

  /**
   * POST /users/delete as Braze documents it: up to 50 users by `external_ids`, `user_aliases`
   * ({alias_name, alias_label}) or `braze_ids`; answers `{deleted, message}`. Needs users.delete.
   */
  private async usersDelete(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.readBody(req);
    const key = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const grant = key ? this.keys[key] : undefined;
    if (!grant || this.faults.revokeKey) return this.reply(res, 401, { message: 'Invalid API key' });
    if (!grant.usersDelete) return this.reply(res, 403, { message: 'This API key does not have permission users.delete' });
    let payload: { external_ids?: unknown; user_aliases?: unknown; braze_ids?: unknown };
    try {
      payload = JSON.parse(body?.toString('utf8') ?? '');
    } catch {
      return this.reply(res, 400, { message: 'Invalid JSON' });
    }
    const list = (v: unknown) => (Array.isArray(v) ? (v as unknown[]) : []);
    const keys = [
      ...list(payload?.external_ids).map((id) => `external_id:${String(id)}`),
      ...list(payload?.user_aliases).map((a) => {
        const alias = (a ?? {}) as { alias_name?: unknown; alias_label?: unknown };
        return `alias:${String(alias.alias_label)}:${String(alias.alias_name)}`;
      }),
      ...list(payload?.braze_ids).map((id) => `braze_id:${String(id)}`),
    ];
    if (keys.length === 0 || keys.length > 50) return this.reply(res, 400, { message: 'Between 1 and 50 users per request' });
    const deleted = keys.filter((k) => this.deleteUser(k)).length;
    this.reply(res, 201, { deleted, message: 'success' });
  }

  private rateHeaders(): Record<string, string> {
    return {
      'X-RateLimit-Limit': String(this.limit),
      'X-RateLimit-Remaining': String(Math.max(0, this.limit - this.window.used)),
      'X-RateLimit-Reset': String(Math.ceil((this.window.start + this.windowMs) / 1000)),
    };
  }

  private trackOpened(socket: { once(event: 'close', listener: () => void): unknown }): void {
    if (this.countedOpen.has(socket)) return;
    this.countedOpen.add(socket);
    const open = () => this.trackOpen.at(-1)?.[1] ?? 0;
    this.trackOpen.push([Date.now(), open() + 1]);
    socket.once('close', () => this.trackOpen.push([Date.now(), open() - 1]));
  }

  /** The most /users/track connections open at once since `since` (epoch ms). */
  private mostOpenSince(since: number): number {
    let most = 0;
    for (const [at, open] of this.trackOpen) most = at < since ? open : Math.max(most, open);
    return most;
  }

  /** POST /users/track, as Braze answers it: refusals of the whole request first, then each object. */
  private async track(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.trackSockets.has(req.socket)) {
      this.trackSockets.add(req.socket);
      this.stats.trackConnections++;
      this.trackOpened(req.socket);
    }
    const body = await this.readBody(req);
    if (this.faults.dropConnections && this.faults.dropConnections > 0) {
      this.faults.dropConnections--;
      req.socket.destroy();
      return;
    }
    if (this.faults.slowMs) await new Promise((r) => setTimeout(r, this.faults.slowMs));
    const refused = this.refusal(req, body);
    if (refused) return this.reply(res, refused.status, { message: refused.message }, refused.headers ?? this.rateHeaders());
    const attributes = this.attributesOf(body!);
    if (typeof attributes === 'string') return this.reply(res, 400, { message: attributes }, this.rateHeaders());
    this.stats.objectsReceived += attributes.length;

    const errors: { type: string; input_array: string; index: number }[] = [];
    const userKeys: string[] = [];
    let processed = 0;
    attributes.forEach((raw, index) => {
      const obj = raw as Record<string, unknown>;
      const user = this.userOf(obj, body!.length);
      if ('error' in user) return errors.push({ type: user.error, input_array: 'attributes', index });
      const writing = this.inFlightUsers.get(user.key) ?? 0;
      if (writing > 0) this.stats.concurrentUserWrites++;
      this.inFlightUsers.set(user.key, writing + 1);
      userKeys.push(user.key);
      if (this.apply(obj, user)) processed++;
    });
    // Hold the users "in flight" for the length of this request, then release them.
    await new Promise((r) => setImmediate(r));
    for (const k of userKeys) {
      const n = (this.inFlightUsers.get(k) ?? 1) - 1;
      if (n > 0) this.inFlightUsers.set(k, n);
      else this.inFlightUsers.delete(k);
    }
    this.stats.objectsProcessed += processed;
    this.reply(
      res,
      201,
      { message: 'success', attributes_processed: processed, ...(errors.length ? { errors } : {}) },
      this.rateHeaders(),
    );
  }

  /** Why the whole request is refused (key, rate limit, faults, size), or null. */
  private refusal(
    req: IncomingMessage,
    body: Buffer | null,
  ): { status: number; message: string; headers?: Record<string, string> } | null {
    const key = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const grant = key ? this.keys[key] : undefined;
    if (!grant || this.faults.revokeKey) return { status: 401, message: 'Invalid API key', headers: {} };
    if (!grant.usersTrack) return { status: 403, message: 'This API key does not have permission users.track', headers: {} };
    const now = Date.now();
    if (now - this.window.start >= this.windowMs) this.window = { start: now, used: 0 };
    if (this.faults.rateLimitedUntil && now < this.faults.rateLimitedUntil) {
      const retryAfter = Math.ceil((this.faults.rateLimitedUntil - now) / 1000);
      return { status: 429, message: 'Rate limit exceeded', headers: { 'X-RateLimit-Retry-After': String(retryAfter) } };
    }
    this.window.used++;
    if (this.window.used > this.limit) {
      // Braze replaces the rate-limit headers by Retry-After on a 429: seconds until the window resets.
      const retryAfter = Math.max(1, Number(this.rateHeaders()['X-RateLimit-Reset']) - Math.floor(now / 1000));
      return { status: 429, message: 'Rate limit exceeded', headers: { 'X-RateLimit-Retry-After': String(retryAfter) } };
    }
    if (this.faults.fail5xx && this.faults.fail5xx > 0) {
      this.faults.fail5xx--;
      return { status: 503, message: 'Service Unavailable' };
    }
    if (body === null) return { status: 400, message: 'Request body too large' };
    return null;
  }

  /** The request's attributes objects, or why Braze refuses the request as a whole (a 400). */
  private attributesOf(body: Buffer): unknown[] | string {
    let payload: { attributes?: unknown; events?: unknown; purchases?: unknown };
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch {
      return 'Invalid JSON';
    }
    if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return 'Request body must be an object';
    const arrays = ['attributes', 'events', 'purchases'] as const;
    for (const a of arrays) if (payload[a] !== undefined && !Array.isArray(payload[a])) return `${a} must be an array`;
    const attributes = (payload.attributes ?? []) as unknown[];
    const total = arrays.reduce((n, a) => n + ((payload[a] as unknown[] | undefined)?.length ?? 0), 0);
    // As Braze: an empty request from a valid key is a 400 (the key check relies on it; see key-check.ts).
    if (total === 0) return "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields.";
    if (total > MAX_OBJECTS) return `Too many objects: ${total} > ${MAX_OBJECTS}`;
    // Braze refuses a whole batch when an object is not an object at all.
    if (attributes.some((o) => !o || typeof o !== 'object' || Array.isArray(o))) return 'Each attributes entry must be an object';
    if (this.faults.refuseEveryRequest) return this.faults.refuseEveryRequest;
    const marker = this.faults.badObjectMarker;
    if (marker && attributes.some((o) => JSON.stringify(o).includes(marker))) return 'Invalid attributes object in request';
    return attributes;
  }

  /** The user an object addresses (its key here and its identifier field), or the error Braze reports for it. */
  private userOf(
    obj: Record<string, unknown>,
    bodyBytes: number,
  ): { key: string; idKey: string | undefined } | { error: string } {
    const idKeys = IDENTIFIER_KEYS.filter((k) => obj[k] !== undefined);
    if (idKeys.length > 1)
      return { error: "Received multiple identifiers ('external_id', 'user_alias', 'braze_id') for the same object" };
    // Only a body over 100 KB can hold an object over 100 KB: skip the measuring otherwise.
    if (bodyBytes > MAX_OBJECT_BYTES && Buffer.byteLength(JSON.stringify(obj)) > MAX_OBJECT_BYTES)
      return { error: 'Object exceeds 100 KB' };
    let key: string;
    if (idKeys[0] === 'external_id') {
      if (typeof obj.external_id !== 'string' || obj.external_id === '')
        return { error: "'external_id' must be a non-empty string" };
      key = `external_id:${obj.external_id}`;
    } else if (idKeys[0] === 'user_alias') {
      const a = obj.user_alias as { alias_name?: unknown; alias_label?: unknown };
      if (!a || typeof a.alias_name !== 'string' || typeof a.alias_label !== 'string' || !a.alias_name || !a.alias_label)
        return { error: "'user_alias' must have 'alias_name' and 'alias_label'" };
      key = `alias:${a.alias_label}:${a.alias_name}`;
    } else if (idKeys[0] === 'braze_id') key = `braze_id:${String(obj.braze_id)}`;
    else if (typeof obj.email === 'string') key = `email:${obj.email.toLowerCase()}`;
    else return { error: "Missing identifier: one of 'external_id', 'user_alias', 'braze_id' or 'email' is required" };
    if (typeof obj.email === 'string' && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(obj.email)) return { error: 'Invalid email address' };
    if (this.faults.objectErrorMarker && JSON.stringify(obj).includes(this.faults.objectErrorMarker))
      return { error: 'Invalid value for a custom attribute' };
    for (const k in obj) if (k.charCodeAt(0) === 0x24 /* $ */) return { error: `Invalid attribute name '${k}'` };
    return { key, idKey: idKeys[0] };
  }

  /** Writes an object to its user as Braze does; false when Braze skips it (update-only, and no such user). */
  private apply(obj: Record<string, unknown>, user: { key: string; idKey: string | undefined }): boolean {
    const updateExistingOnly = obj._update_existing_only ?? user.idKey === 'user_alias';
    const existing = this.profiles.get(user.key);
    if (!existing && updateExistingOnly === true) {
      this.stats.skippedUpdateOnly++; // Braze skips it, no error: a deleted user stays deleted
      return false;
    }
    if (!this.store) return true;
    const profile: SandboxProfile = existing ?? { identifier: {}, attributes: {}, updates: 0 };
    if (user.idKey) (profile.identifier as Record<string, unknown>)[user.idKey] = obj[user.idKey];
    else profile.identifier.email = obj.email as string;
    for (const [k, v] of Object.entries(obj)) {
      if ((IDENTIFIER_KEYS as readonly string[]).includes(k) || k === '_update_existing_only') continue;
      if (v === null) delete profile.attributes[k];
      else if (v && typeof v === 'object' && !Array.isArray(v) && ('add' in v || 'remove' in v)) {
        const current = Array.isArray(profile.attributes[k]) ? (profile.attributes[k] as unknown[]) : [];
        const { add = [], remove = [] } = v as { add?: unknown[]; remove?: unknown[] };
        profile.attributes[k] = [...current.filter((x) => !remove.includes(x)), ...add];
      } else profile.attributes[k] = v;
    }
    profile.updates++;
    this.profiles.set(user.key, profile);
    return true;
  }

  private async control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (path === '/sandbox/profiles' && req.method === 'GET')
      return this.reply(res, 200, { profiles: this.profileList() }, {}, false);
    if (path === '/sandbox/stats' && req.method === 'GET') {
      // ?busiestSince=<epoch ms>: also the most requests that arrived in any window since then, and how the first window filled.
      const since = Number(new URL(req.url ?? '', 'http://sandbox').searchParams.get('busiestSince'));
      const busiest =
        Number.isFinite(since) && since > 0
          ? {
              busiestWindow: this.maxRequestsInWindow(this.windowMs, since),
              firstSecondsArrivals: this.arrivalsFromFirst(since),
              trackConnectionsAtOnce: this.mostOpenSince(since),
            }
          : {};
      return this.reply(res, 200, { ...this.stats, profiles: this.profiles.size, ...busiest }, {}, false);
    }
    if (path === '/sandbox/reset' && req.method === 'POST') {
      this.reset();
      return this.reply(res, 200, { ok: true }, {}, false);
    }
    if (path === '/sandbox/faults' && req.method === 'POST') {
      const body = await this.readBody(req);
      try {
        this.setFaults(JSON.parse(body?.toString('utf8') || '{}') as Faults);
      } catch {
        return this.reply(res, 400, { message: 'faults must be JSON' }, {}, false);
      }
      return this.reply(res, 200, { faults: this.faults }, {}, false);
    }
    this.reply(res, 404, { message: 'Not Found' }, {}, false);
  }
}

if (require.main === module) {
  const port = Number(process.argv[2] ?? process.env.BRAZE_SANDBOX_PORT ?? 4010); // 0 = any free port
  const sandbox = new BrazeSandbox({
    storeProfiles: process.env.BRAZE_SANDBOX_STORE !== 'false',
    tls: process.env.BRAZE_SANDBOX_TLS === 'true',
  });
  sandbox.start(port).then((url) => console.log(`Braze sandbox listening on ${url} (API key: sandbox-key)`));
}
