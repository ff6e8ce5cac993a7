// POSTs to Braze on kept-alive connections of the app's own: net/tls sockets, each carrying one
// request at a time, at most `maxSockets` of them and no more than the pace needs
// (./connections-needed.ts), the requests beyond waiting their turn in order, and the connections
// beyond it that a second went unused closed.
// A request is written at once (head and body in one corked write) and its answer read as the
// partition GET reads one (../http1.ts), into a read buffer used again for every read: not a fresh
// buffer per read, as a socket's 'data' gives (over plain TCP a 64 KB one shrunk to the answer's few
// hundred bytes, over TLS one per decrypted record), each held until a garbage collection. node:http's
// client (ClientRequest, its Agent, the streams) cost ~0.1 ms more CPU a request, and a run sends
// 13,334 requests per million profiles: on one core its main thread spent ~1–1.5 CPU-s more per
// million (docs/performance.md). Global fetch cost more still.
import net from 'node:net';
import tls from 'node:tls';
import type { ConnectionsNeeded } from './connections-needed';
import { cachedLookup } from '../cached-lookup';
import {
  AnswerHead,
  chunkDataTaken,
  httpTarget,
  NOT_HTTP,
  readChunkFraming,
  requestHead,
  tlsConnect,
  type Framing,
  type HttpAnswer,
  type HttpTarget,
} from '../http1';

export interface TransportResponse {
  status: number;
  /** Header lookup by name, case-insensitive. */
  header(name: string): string | null;
  text: string;
}

/** What the Braze client needs of a transport (unit tests give it a scripted one). */
export interface PostTransport {
  post(body: Buffer, headers: Record<string, string>, timeoutMs: number): Promise<TransportResponse>;
  close(): void;
}

/**
 * A connection unused this long is closed here, before a server or load balancer closes it while a
 * request is being written to it (sooner when the server's Keep-Alive header asks).
 */
const IDLE_CLOSE_MS = 30_000;
/**
 * A connection beyond what the pace needs is closed once unused this long: idle ones are taken last
 * used first, so one unused a second is one the requests of the moment do not need, and a need that
 * swings from second to second does not close and reopen connections (a handshake each).
 */
const UNNEEDED_CLOSE_MS = 1000;
/** TCP keep-alive probes on a quiet connection, as node:http's kept-alive Agent sets them. */
const TCP_KEEPALIVE_MS = 10_000;

/** A failure as node:http reports one: by its code (never the URL, nor a header: the API key is one). */
const failure = (code: string) =>
  Object.assign(new Error(code === 'ETIMEDOUT' ? 'timed out' : `the request failed (${code})`), { code });
const codeOf = (e: unknown) => (e as NodeJS.ErrnoException).code ?? 'ECONNRESET';

interface Request {
  head: string;
  body: Buffer;
  timeoutMs: number;
  resolve(response: TransportResponse): void;
  reject(error: Error): void;
}

/** How long the server keeps a quiet connection open, from its `Keep-Alive: timeout=N` (ms), if it says. */
function serverIdleMs(answer: HttpAnswer): number | null {
  const seconds = /(?:^|[,;\s])timeout=(\d{1,6})/i.exec(answer.header('keep-alive') ?? '')?.[1];
  return seconds === undefined ? null : Number(seconds) * 1000;
}

/** Bytes a connection reads at once: an answer's head and body, most of them in one read. */
const READ_BYTES = 16 * 1024;

/** Opens a socket whose reads go into `onread`'s buffer. */
type Open = (onread: net.OnReadOpts) => net.Socket;

/** One connection: one request at a time, its answer read as it comes. */
class Connection {
  readonly socket: net.Socket;
  request: Request | null = null;
  private head = new AnswerHead();
  /**
   * When the request under way went (performance.now()), for its round trip: on a new connection,
   * once connected (its handshake is the connection's, once, not the request's: counted, a burst of
   * new connections made the round trip look longer and asked for more connections still).
   */
  private sentAt = 0;
  private answer: HttpAnswer | null = null;
  private framing: Framing = { kind: 'close' };
  private body: Buffer[] = [];
  /** How long it may stay unused once answered (the server's Keep-Alive may shorten it). */
  idleMs = IDLE_CLOSE_MS;
  /** When it was last left unused (performance.now()). */
  idleSince = 0;
  private gone = false;

  /**
   * `readBuffer`: read into again after each read (shared: each read is handled before the next;
   * nothing done within one may make a read start, e.g. a TLS write of zero bytes).
   */
  constructor(
    open: Open,
    readBuffer: Buffer,
    /** `roundTripMs`: the request's, when it was answered. */
    private readonly done: (c: Connection, reusable: boolean, roundTripMs?: number) => void,
  ) {
    const socket = (this.socket = open({
      buffer: readBuffer,
      callback: (n, read) => {
        this.receivedSafely((read as Buffer).subarray(0, n));
        return true; // never paused: an answer is read whole as it comes
      },
    }));
    socket.setNoDelay(true);
    socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    socket.on('timeout', () => this.fail('ETIMEDOUT'));
    socket.on('error', (e) => this.fail(codeOf(e)));
    // The server's end of it: the answer, if it is framed by the end; else what was under way broke off.
    socket.on('end', () =>
      this.request && this.answer && this.framing.kind === 'close' ? this.complete(false) : this.fail('ECONNRESET'),
    );
    socket.on('close', () => this.fail('ECONNRESET'));
    // Ready for bytes: a TLS socket once its handshake is done.
    socket.once(
      socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect',
      () => this.request && (this.sentAt = performance.now()),
    );
  }

  send(request: Request): void {
    this.request = request;
    this.socket.ref();
    this.head = new AnswerHead();
    this.answer = null;
    this.body = [];
    // Quiet this long (nothing sent or answered), the request fails, as node:http's req.setTimeout.
    this.socket.setTimeout(request.timeoutMs);
    this.socket.cork();
    this.socket.write(request.head, 'latin1');
    this.socket.write(request.body);
    this.socket.uncork();
    this.sentAt = performance.now();
  }

  /** Unused (answered, kept for the next request): quiet for `idleMs`, it is closed. It keeps no process alive. */
  idle(): void {
    this.idleSince = performance.now();
    this.socket.setTimeout(this.idleMs);
    this.socket.unref();
  }

  /** Drops the connection; a request under way on it fails. */
  close(): void {
    this.fail('ECONNRESET');
  }

  /** `bytes` are valid only during the call: what is kept is copied. */
  private receivedSafely(bytes: Buffer): void {
    try {
      this.received(bytes);
    } catch (e) {
      this.fail(codeOf(e));
    }
  }

  private received(bytes: Buffer): void {
    // Bytes nothing asked for: the connection is not to be trusted with the next request.
    if (!this.request) return this.fail('ECONNRESET');
    if (!this.answer) {
      const read = this.head.read(bytes);
      if (read === null) return;
      this.answer = read.answer;
      this.framing = read.framing;
      bytes = read.rest;
      if (this.framing.kind === 'length' && this.framing.left === 0) return this.complete(bytes.length === 0);
    }
    const f = this.framing;
    if (f.kind === 'close') {
      this.body.push(Buffer.from(bytes));
      return;
    }
    if (f.kind === 'length') {
      const take = Math.min(f.left, bytes.length);
      this.body.push(Buffer.from(bytes.subarray(0, take)));
      f.left -= take;
      // Bytes past the body: not an answer to anything asked, so the connection goes after this one.
      if (f.left === 0) this.complete(take === bytes.length);
      return;
    }
    this.chunks(f, bytes);
  }

  /** A chunked body's bytes: each chunk's data kept, up to the empty line after the last chunk's trailers. */
  private chunks(f: Extract<Framing, { kind: 'chunked' }>, bytes: Buffer): void {
    let at = 0;
    while (at < bytes.length) {
      if (f.left > 0) {
        const take = Math.min(f.left, bytes.length - at);
        this.body.push(Buffer.from(bytes.subarray(at, at + take)));
        chunkDataTaken(f, take);
        at += take;
        continue;
      }
      const step = readChunkFraming(f, bytes, at);
      at = step.at;
      if (step.found === 'bad') return this.fail(NOT_HTTP);
      if (step.found === 'end') return this.complete(at === bytes.length);
      if (step.found === 'more') return;
    }
  }

  /** The answer is whole; `clean`: nothing came after it, so the connection may carry the next request. */
  private complete(clean: boolean): void {
    const request = this.request!;
    const answer = this.answer!;
    this.request = null;
    this.socket.setTimeout(0);
    const text = Buffer.concat(this.body).toString('utf8');
    this.body = [];
    const reusable = clean && this.framing.kind !== 'close' && keptAlive(answer, this.head.http11);
    const serverMs = serverIdleMs(answer);
    this.idleMs = serverMs === null ? IDLE_CLOSE_MS : Math.min(IDLE_CLOSE_MS, Math.max(100, serverMs - 1000));
    if (!reusable) this.drop();
    request.resolve({
      status: answer.status,
      header: (name) => answer.header(name.toLowerCase()),
      text,
    });
    this.done(this, reusable, performance.now() - this.sentAt);
  }

  private fail(code: string): void {
    const request = this.request;
    this.request = null;
    const first = !this.gone;
    this.drop();
    request?.reject(failure(code));
    if (first) this.done(this, false);
  }

  private drop(): void {
    this.gone = true;
    this.socket.destroy();
  }
}

/** Whether the server keeps the connection after this answer (RFC 9112 §9.3). */
function keptAlive(answer: HttpAnswer, http11: boolean): boolean {
  const connection = (answer.header('connection') ?? '').toLowerCase();
  if (/(?:^|,)\s*close\s*(?:,|$)/.test(connection)) return false;
  return http11 || /(?:^|,)\s*keep-alive\s*(?:,|$)/.test(connection);
}

export interface TransportOptions {
  /** Added to the defaults (a test's own CA). */
  tls?: tls.ConnectionOptions;
  /**
   * Connections opened only while fewer than this says (absent: up to `maxSockets`), and those beyond
   * it closed once unused a second; told each round trip.
   */
  needed?: Pick<ConnectionsNeeded, 'count' | 'roundTrip'>;
}

export class Transport implements PostTransport {
  private readonly target: HttpTarget;
  private readonly connections = new Set<Connection>();
  /** Answered and kept, the last used last (used first: the others may close, unused). */
  private readonly idle: Connection[] = [];
  private readonly waiting: Request[] = [];
  private closed = false;
  /** The last TLS session Braze gave: a new connection resumes it, sparing a full handshake (as node:https does). */
  private tlsSession: Buffer | undefined;
  private readonly readBuffer = Buffer.allocUnsafeSlow(READ_BYTES);
  /**
   * One TLS context for all its connections, and Braze's addresses looked up once a while: tls.connect
   * otherwise makes a context and a lookup for each, ~1 ms of the main thread a connection.
   */
  private secureContext: tls.SecureContext | undefined;
  private readonly lookup = cachedLookup();

  constructor(
    url: string,
    private readonly maxSockets: number,
    private readonly options: TransportOptions = {},
  ) {
    if (!(maxSockets >= 1)) throw new Error(`a transport needs at least one connection (${maxSockets})`);
    this.target = httpTarget(url);
  }

  /** `body` as bytes (encoded once by the caller, who may send it again on a retry). */
  post(body: Buffer, headers: Record<string, string>, timeoutMs: number): Promise<TransportResponse> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(failure('ECONNRESET'));
      // A header that would split the request throws here: the promise rejects, nothing is sent.
      const head = requestHead('POST', this.target, 'keep-alive', headers, `Content-Length: ${body.length}\r\n`);
      this.waiting.push({ head, body, timeoutMs, resolve, reject });
      this.startWaiting();
    });
  }

  /**
   * The requests waiting go, first come first: on a kept connection, else on a new one while fewer
   * are open than allowed. A waiting request's timeout starts once it is written; the budget keeps
   * at most its requests in flight waiting.
   */
  private startWaiting(): void {
    for (let next = this.waiting[0]; next; next = this.waiting[0]) {
      const kept = this.idle.pop();
      if (!kept && this.connections.size >= this.allowed()) return;
      this.waiting.shift();
      try {
        (kept ?? this.connect()).send(next);
      } catch (e) {
        next.reject(failure(codeOf(e))); // from a socket event's callback, thrown, it would settle nothing
      }
    }
  }

  /** Connections that may be open now: what the pace needs, within `maxSockets`. */
  private allowed(): number {
    return Math.min(this.maxSockets, this.options.needed?.count ?? Infinity);
  }

  private connect(): Connection {
    const { secure, host, port, serverName } = this.target;
    const open: Open = (onread) =>
      secure
        ? tlsConnect({
            ...this.options.tls,
            secureContext: this.options.tls?.secureContext ?? (this.secureContext ??= tls.createSecureContext(this.options.tls)),
            lookup: this.lookup,
            host,
            port,
            servername: serverName,
            ALPNProtocols: ['http/1.1'],
            session: this.tlsSession,
            onread,
          })
        : net.connect({ host, port, onread, lookup: this.lookup });
    const c = new Connection(open, this.readBuffer, (done, reusable, roundTripMs) => {
      if (roundTripMs !== undefined) this.options.needed?.roundTrip(roundTripMs);
      this.released(done, reusable);
    });
    if (secure) c.socket.on('session', (session: Buffer) => (this.tlsSession = session));
    this.connections.add(c);
    return c;
  }

  /** A connection is free (reusable) or gone: the next request waiting goes on it, or on a new one. */
  private released(c: Connection, reusable: boolean): void {
    if (!reusable) {
      this.connections.delete(c);
      const at = this.idle.indexOf(c);
      if (at >= 0) this.idle.splice(at, 1);
    }
    if (reusable) {
      const next = this.waiting.shift();
      if (!next) {
        this.idle.push(c);
        c.idle();
        this.closeUnneeded();
        return;
      }
      c.send(next);
    }
    // A connection gone, or more allowed since (a longer round trip): the next waiting go on new ones.
    this.startWaiting();
  }

  /**
   * Beyond what the pace needs (after a burst, or once the round trip got shorter), the connections
   * unused a second are closed, the longest unused first: kept, each would hold its TLS buffers
   * until its idle timeout. Looked at as answers leave connections unused.
   */
  private closeUnneeded(): void {
    const before = performance.now() - UNNEEDED_CLOSE_MS;
    while (this.connections.size > this.allowed() && this.idle[0] && this.idle[0].idleSince <= before) this.idle.shift()!.close();
  }

  close(): void {
    this.closed = true;
    for (const request of this.waiting.splice(0)) request.reject(failure('ECONNRESET'));
    for (const c of [...this.connections]) c.close();
  }
}
