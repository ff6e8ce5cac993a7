// HTTP/1.1 as the app's own clients speak it (the partition GET, store/http-get.ts, and the
// Braze transport, braze/transport.ts): where a request goes and how its head is written; an
// answer's head read as RFC 9112 has a client read it, and how the body that follows is framed.
import { validateHeaderName, validateHeaderValue } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';

/** Where an http(s) URL's requests go. */
export interface HttpTarget {
  secure: boolean;
  /** The host to connect to (an IPv6 address without its brackets) and its port. */
  host: string;
  port: number;
  /** The TLS server name to ask for: the host, unless it is an IP address (SNI names hosts only). */
  serverName: string | undefined;
  /** The Host header's value, and the request's target (path and query). */
  hostHeader: string;
  path: string;
}

/** An http(s) URL's target; any other scheme throws (code ERR_INVALID_PROTOCOL). */
export function httpTarget(url: string): HttpTarget {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  if (!secure && u.protocol !== 'http:')
    throw Object.assign(new Error(`not an http(s) URL: ${u.protocol}`), { code: 'ERR_INVALID_PROTOCOL' });
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    secure,
    host,
    port: Number(u.port) || (secure ? 443 : 80),
    serverName: net.isIP(host) ? undefined : host,
    hostHeader: u.host,
    path: `${u.pathname}${u.search}`,
  };
}

/**
 * A request's head, to be written as latin1 (as node:http writes headers: a value's bytes as they
 * were read): its line, Host, Connection, the headers given, then `more` (whole lines). A header
 * Node would refuse (a line break in a value…) throws, with its code, naming the header, not its value.
 */
export function requestHead(
  method: string,
  target: HttpTarget,
  connection: 'close' | 'keep-alive',
  headers: Record<string, string>,
  more = '',
): string {
  let head = `${method} ${target.path} HTTP/1.1\r\nHost: ${target.hostHeader}\r\nConnection: ${connection}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    head += `${name}: ${value}\r\n`;
  }
  return `${head}${more}\r\n`;
}

/** The status and headers of an answer. */
export interface HttpAnswer {
  status: number;
  /** A header's value by its lower-case name (the first, where one is repeated). */
  header(name: string): string | null;
}

/** An answer whose status lines and headers, interim answers' included, are longer is not one (node:http's limit is 16 KB). */
const MAX_HEAD_BYTES = 64 * 1024;
/** Interim answers (100 Continue…) taken before the real one. */
const MAX_INTERIM_ANSWERS = 10;
const HEAD_END = '\r\n\r\n';

/** What an answer that is not HTTP fails with (its code: nothing of the request in it). */
export const NOT_HTTP = 'the answer is not HTTP';
const notHttp = () => Object.assign(new Error(NOT_HTTP), { code: NOT_HTTP });

/** A header's name: an RFC 9110 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export type Framing =
  | { kind: 'length'; left: number }
  /**
   * Chunked: `left` bytes of the chunk being read remain; ≤ 0 while a line is read (`line`, so far):
   * -1 a chunk's size, -2 the line end after a chunk's data, -3 the trailers after the last chunk.
   */
  | { kind: 'chunked'; left: number; line: string }
  | { kind: 'close' };

/** A chunk-size or trailer line still without its end after this many bytes is not HTTP. */
const MAX_CHUNK_LINE = 1024;

/** `n` bytes of the chunk being read were taken: once it is whole, its own line end comes next. */
export function chunkDataTaken(f: Extract<Framing, { kind: 'chunked' }>, n: number): void {
  f.left -= n;
  if (f.left === 0) f.left = -2;
}

/**
 * Reads a chunked body's framing from bytes[at…], where no chunk data is due (`f.left` ≤ 0), and
 * says what it came to: 'data' (`f.left` bytes of a chunk follow at `at`), 'last' (the last chunk's
 * size line: its trailers follow), 'end' (the empty line after the trailers), 'more' (the bytes ran
 * out: read on from the next ones), or 'bad' (not HTTP).
 */
export function readChunkFraming(
  f: Extract<Framing, { kind: 'chunked' }>,
  bytes: Buffer,
  at: number,
): { at: number; found: 'data' | 'last' | 'end' | 'more' | 'bad' } {
  for (;;) {
    const lf = bytes.indexOf(0x0a, at);
    f.line += bytes.toString('latin1', at, lf < 0 ? bytes.length : lf);
    if (lf < 0) return { at: bytes.length, found: f.line.length > MAX_CHUNK_LINE ? 'bad' : 'more' };
    at = lf + 1;
    const line = f.line.trim();
    f.line = '';
    if (f.left === -3) {
      if (line === '') return { at, found: 'end' };
      continue; // a trailer: not needed
    }
    if (f.left === -2) {
      if (line !== '') return { at, found: 'bad' };
      f.left = -1;
      continue;
    }
    const size = line.split(';')[0]!.trim(); // a size may be followed by extensions
    if (!/^0*[0-9a-fA-F]{1,12}$/.test(size)) return { at, found: 'bad' };
    f.left = parseInt(size, 16) || -3;
    return { at, found: f.left > 0 ? 'data' : 'last' };
  }
}

/**
 * The status line and headers, or null when they are not HTTP/1.x as RFC 9112 has a client take
 * them: no folded lines, names that are tokens, no Content-Length repeated with another value, no
 * Transfer-Encoding repeated (any of which could cut a body short, or run it on).
 */
export function parseHead(text: string): HttpAnswer | null {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0]!)?.[1];
  if (status === undefined) return null;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, Math.max(0, colon)).toLowerCase();
    if (!TOKEN.test(name)) return null;
    const value = line.slice(colon + 1).trim();
    const seen = headers.get(name);
    if (seen === undefined) headers.set(name, value);
    else if (name === 'transfer-encoding' || (name === 'content-length' && seen !== value)) return null;
  }
  return { status: Number(status), header: (name) => headers.get(name) ?? null };
}

/**
 * How the body ends, as the headers say; null when they contradict themselves, or give both a
 * length and a coding (RFC 9112 §6.1: a sign of an answer smuggled or split).
 */
export function framingOf(answer: HttpAnswer): Framing | null {
  // No body whatever the headers say (RFC 9112 §6.3): the answer ends with its head.
  if (answer.status === 204 || answer.status === 304) return { kind: 'length', left: 0 };
  const coding = answer.header('transfer-encoding');
  if (coding !== null) {
    if (answer.header('content-length') !== null) return null;
    // Chunked alone: any other coding (gzip…) was not asked for.
    return /(?:^|,)\s*chunked\s*$/i.test(coding) && coding.split(',').length === 1
      ? { kind: 'chunked', left: -1, line: '' }
      : null;
  }
  const length = answer.header('content-length');
  if (length === null) return { kind: 'close' };
  return /^\d{1,15}$/.test(length) ? { kind: 'length', left: Number(length) } : null;
}

/** The head of an answer, read as its bytes come: interim answers (100 Continue…) passed over. */
export class AnswerHead {
  /** The status line and headers read so far. */
  private text = '';
  /** Bytes of the heads completed so far (interim answers'), and how many. */
  private headBytes = 0;
  private interims = 0;
  /** The answer's status line says HTTP/1.1 (kept-alive unless it says otherwise). */
  http11 = false;

  /**
   * The answer, its body's framing and the bytes after its head; null while the head is incomplete.
   * Throws (code NOT_HTTP) at what is not an HTTP/1.x answer, or one switching protocols (101),
   * which nothing here asks for.
   */
  read(bytes: Buffer): { answer: HttpAnswer; framing: Framing; rest: Buffer } | null {
    for (;;) {
      const before = this.text.length;
      const room = MAX_HEAD_BYTES - this.headBytes;
      const text = this.text + bytes.toString('latin1', 0, Math.max(0, Math.min(bytes.length, room - before)));
      const at = text.indexOf(HEAD_END, Math.max(0, before - 3));
      if (at < 0) {
        if (text.length >= room) throw notHttp();
        this.text = text;
        return null;
      }
      const rest = bytes.subarray(at + HEAD_END.length - before);
      const answer = parseHead(text.slice(0, at));
      if (!answer || answer.status === 101) throw notHttp();
      if (answer.status < 200) {
        this.headBytes += at + HEAD_END.length;
        this.text = '';
        if (++this.interims > MAX_INTERIM_ANSWERS) throw notHttp();
        if (rest.length === 0) return null;
        bytes = rest;
        continue;
      }
      const framing = framingOf(answer);
      if (!framing) throw notHttp();
      this.http11 = text.startsWith('HTTP/1.1');
      return { answer, framing, rest };
    }
  }
}

/** tls.connect, which takes `onread` as net.connect does (nodejs/node#35753), though its types do not say so. */
export const tlsConnect = tls.connect as (options: tls.ConnectionOptions & { onread: net.OnReadOpts }) => tls.TLSSocket;
