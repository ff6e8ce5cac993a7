// One HTTP/1.1 GET whose answer is read into one reused buffer: how the app downloads a partition
// or a sync-state bucket (blob-download.ts). node:http copies every body chunk into fresh memory,
// wraps it in a stream and leaves it to the garbage collector: on one core, with the page faults of
// that fresh memory, a quarter of the CPU of reading a wide snapshot (docs/performance.md). Here the
// socket reads straight into a buffer of the request's own (`onread`, on net and tls sockets alike)
// and each piece of the body is handed over from it, valid only until the handler returns.
// It speaks what a Blob GET's answer needs: a status line, headers, and a body framed by
// Content-Length, chunked, or the connection's end. One connection a request, never kept alive (a
// partition is tens of MB), its TLS session resumed where an earlier one left one; no proxy (with
// one in the environment, the main thread downloads through the SDK instead: blob-grant.ts).
import net from 'node:net';
import tls from 'node:tls';
import { cachedLookup } from '../cached-lookup';
import {
  AnswerHead,
  chunkDataTaken,
  httpTarget,
  readChunkFraming,
  requestHead,
  tlsConnect,
  type Framing,
  type HttpAnswer,
} from '../http1';

export type { HttpAnswer };

/** What reads a body; no handler may throw. */
export interface BodyReader {
  /**
   * The body's next bytes, valid only during the call (the buffer is read into again). Returns
   * nothing once it took them, or a promise (which must not reject): it did not take them, and is
   * handed them again once the promise settles, the socket paused meanwhile.
   */
  bytes(bytes: Buffer): void | Promise<void>;
  /** The body is complete, as its framing says. */
  end(): void;
  /** The body broke off (the connection went, or idled too long). */
  broke(why: string): void;
}

/** The TLS options of a request that adds none to the defaults. */
const DEFAULT_TLS: tls.ConnectionOptions = Object.freeze({});

/**
 * Kept per TLS options object, so a request whose options differ (a test's own CA) never resumes a
 * session another's verified: the TLS sessions to resume, by server, and one TLS context (tls.connect
 * makes one a connection otherwise). Each blob is a connection of its own (a sync-state bucket, a
 * partition): resumed, its handshake costs ~0.2–0.35 ms less client CPU (a 330 KB GET from a
 * loopback server with an RSA 2048 certificate: 2.2 ms full, 1.85–2.0 resumed).
 */
const tlsKept = new WeakMap<tls.ConnectionOptions, { sessions: Map<string, Buffer>; context: tls.SecureContext }>();
function tlsKeptFor(options: tls.ConnectionOptions) {
  let kept = tlsKept.get(options);
  if (!kept) tlsKept.set(options, (kept = { sessions: new Map(), context: tls.createSecureContext(options) }));
  return kept;
}

/** The storage account's addresses, looked up once a while for all the GETs (../cached-lookup.ts). */
const lookup = cachedLookup();

/** Bytes a socket reads at once, by default. */
const READ_BYTES = 256 * 1024;

// Errors are described by their code only: a message could hold the URL, and with it a SAS.
const codeOf = (e: unknown) => (e as NodeJS.ErrnoException).code ?? 'the connection failed';

export class HttpGet {
  /** The status and headers, or null when the request failed before them (`failure` says why). */
  readonly answer: Promise<HttpAnswer | null>;
  failure = 'the connection failed';
  private answered!: (answer: HttpAnswer | null) => void;
  private socket: net.Socket | null = null;
  /** The status line and headers, until they are read. */
  private head: AnswerHead | null = new AnswerHead();
  private idleMs = 0;
  private framing: Framing = { kind: 'close' };
  private reader: BodyReader | null = null;
  /**
   * Body bytes not handed over yet (copies): those that came before anyone read them, or while the
   * reader waits; then how the body ended, if it has.
   */
  private readonly held: Buffer[] = [];
  private ending: { broke: string | null } | null = null;
  /** The reader asked to wait (a promise not settled yet). */
  private waiting = false;
  private done = false;

  /** Sends the request now; `tlsOptions` only add to the defaults (a test's own CA). */
  constructor(
    url: string,
    headers: Record<string, string>,
    idleMs: number,
    tlsOptions: tls.ConnectionOptions = DEFAULT_TLS,
    readBytes = READ_BYTES,
  ) {
    this.answer = new Promise((resolve) => (this.answered = resolve));
    try {
      const target = httpTarget(url);
      const { secure, host, port } = target;
      const request = requestHead('GET', target, 'close', headers);
      const buffer = Buffer.allocUnsafe(readBytes);
      // Returning false pauses the socket: body bytes wait in it (and in the server) until read.
      const onread: net.OnReadOpts = { buffer, callback: (n, read) => this.receivedSafely((read as Buffer).subarray(0, n)) };
      const kept = secure ? tlsKeptFor(tlsOptions) : null;
      const server = `${host}:${port}:${target.serverName ?? ''}`;
      const socket = (this.socket = kept
        ? tlsConnect({
            ...tlsOptions,
            secureContext: tlsOptions.secureContext ?? kept.context,
            lookup,
            host,
            port,
            servername: target.serverName,
            onread,
            session: kept.sessions.get(server),
          })
        : net.connect({ host, port, onread, lookup }));
      if (kept) socket.on('session', (session: Buffer) => kept.sessions.set(server, session));
      this.idleMs = idleMs;
      socket.setTimeout(idleMs);
      socket.on('timeout', () => socket.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      socket.on('error', (e) => this.closed(codeOf(e)));
      socket.on('end', () => this.closed(null));
      socket.on('close', () => this.closed('ECONNRESET'));
      socket.write(request, 'latin1');
    } catch (e) {
      // A request that cannot even be made (a header refused…) fails as one that got no answer.
      this.failure = codeOf(e);
      this.answered(null);
    }
  }

  /** Hands the body to `reader` (what came before first); call once, after the answer. */
  read(reader: BodyReader): void {
    this.reader = reader;
    this.handHeld();
  }

  /** Hands over what is held, then (the reader not waiting) how the body ended, or the rest as it comes. */
  private handHeld(): void {
    while (this.held.length > 0 && !this.waiting && !this.done) this.body(this.held.shift()!);
    if (this.waiting || this.done) return;
    if (this.framing.kind === 'length' && this.framing.left === 0) return this.finish(null); // an empty body
    if (this.ending) return this.finish(this.ending.broke);
    this.socket?.setTimeout(this.idleMs);
    this.socket?.resume();
  }

  /** The reader did not take `rest` (raw body bytes, framing and all): held until `wait` settles. */
  private waitFor(wait: Promise<void>, rest: Buffer): void {
    this.waiting = true;
    this.held.unshift(Buffer.from(rest));
    this.socket?.setTimeout(0); // paused, not idle
    const resume = () => {
      this.waiting = false;
      this.handHeld();
    };
    void wait.then(resume, resume); // a reader's promise must not reject; were it to, reading goes on
  }

  /** Drops the connection; the reader hears nothing more. */
  destroy(): void {
    this.done = true;
    this.socket?.destroy();
  }

  /** received(), and what it throws ends the request (it would be uncaught: a socket's callback). */
  private receivedSafely(bytes: Buffer): boolean {
    try {
      return this.received(bytes);
    } catch (e) {
      if (this.head !== null) this.fail(codeOf(e));
      else if (this.reader) this.finish(codeOf(e));
      else {
        this.ending ??= { broke: codeOf(e) }; // told to the reader when it comes
        this.socket?.destroy();
      }
      return false;
    }
  }

  /** Bytes the socket read; false pauses it. */
  private received(bytes: Buffer): boolean {
    if (this.done) return false;
    if (this.head !== null) {
      const rest = this.headRead(bytes);
      if (rest === null) return !this.done;
      bytes = rest;
    }
    if (bytes.length === 0) return true;
    if (!this.reader || this.waiting) {
      // Paused until read: not idle (a partition before it may take minutes), so no timeout meanwhile.
      this.held.push(Buffer.from(bytes));
      this.socket?.setTimeout(0);
      return false;
    }
    this.body(bytes);
    return !this.done && !this.waiting;
  }

  /** Reads the status line and headers: what follows them, or null while they are incomplete. */
  private headRead(bytes: Buffer): Buffer | null {
    const read = this.head!.read(bytes);
    if (read === null) return null;
    this.head = null;
    this.framing = read.framing;
    this.answered(read.answer);
    return read.rest;
  }

  /** Body bytes, as framed: handed to the reader, up to the body's end. */
  private body(bytes: Buffer): void {
    const f = this.framing;
    let at = 0;
    while (at < bytes.length && !this.done) {
      // The framing moves on only once the reader took the bytes.
      if (f.kind === 'close') {
        const wait = this.reader!.bytes(bytes.subarray(at));
        if (wait instanceof Promise) this.waitFor(wait, bytes.subarray(at));
        return;
      }
      if (f.kind === 'length') {
        const take = Math.min(f.left, bytes.length - at);
        const wait = take > 0 ? this.reader!.bytes(bytes.subarray(at, at + take)) : undefined;
        if (wait instanceof Promise) return this.waitFor(wait, bytes.subarray(at));
        f.left -= take;
        if (f.left === 0) this.finish(null);
        return;
      }
      if (f.left > 0) {
        const take = Math.min(f.left, bytes.length - at);
        const wait = this.reader!.bytes(bytes.subarray(at, at + take));
        if (wait instanceof Promise) return this.waitFor(wait, bytes.subarray(at));
        chunkDataTaken(f, take);
        at += take;
        continue;
      }
      const step = readChunkFraming(f, bytes, at);
      at = step.at;
      if (step.found === 'bad') return this.finish('the chunked body is not HTTP');
      if (step.found === 'last') return this.finish(null); // trailers, if any, are not needed
      if (step.found === 'more') return;
    }
  }

  /** The connection ended (null: cleanly, at the server's end of it) or failed. */
  private closed(why: string | null): void {
    if (this.done) return;
    if (this.head !== null) {
      this.fail(why ?? 'ECONNRESET'); // closed before an answer, as node:http says it
      return;
    }
    const broke = why === null && this.framing.kind === 'close' ? null : (why ?? 'the body broke off');
    if (!this.reader || this.waiting || this.held.length > 0) this.ending ??= { broke };
    else this.finish(broke);
  }

  private fail(why: string): void {
    this.failure = why;
    this.destroy();
    this.answered(null);
  }

  /** The body ended (`broke`: why it broke off instead); the connection is dropped. */
  private finish(broke: string | null): void {
    if (this.done) return;
    this.destroy();
    if (broke === null) this.reader!.end();
    else this.reader!.broke(broke);
  }
}
