// A blob downloaded through the app's own GET (http-get.ts), with a grant made for it
// (blob-grant.ts): a CI partition (engine/read/partition-download.ts), or a bucket of
// the sync state (engine/state/sync-state.ts). No buffer per socket chunk and none of the SDK's
// work per request: through the SDK, a 1 % change run at 1 M made 7–10 full collections on the
// main thread while it downloaded the state, 3–5 this way.
// Failures are met as the SDK's download meets them: a request that fails before its body
// (network, 408, 429, 5xx) is tried again, four tries with waits of 0, 4 and 12 s, counted afresh
// once a request delivers bytes; a body that breaks off is resumed where it stopped (`Range`), on
// the same version of the blob (`If-Match`), up to five times.
import type tls from 'node:tls';
import type { BlobGrant } from './blob-grant';
import { HttpGet, type HttpAnswer } from './http-get';

export interface DownloadOptions {
  /** Requests that fail before their body, in a row, before giving up. */
  tries?: number;
  /** Bodies that break off, resumed before giving up. */
  resumes?: number;
  /** The wait after the second failure in a row (none after the first; ×3, ×7… after the next). */
  backoffMs?: number;
  /** No byte for this long: the request is dropped (and tried again). */
  idleMs?: number;
  /** Added to the defaults of an https request (a test's own CA). */
  tlsOptions?: tls.ConnectionOptions;
  /** Bytes a socket reads at once (the most `push` is handed at a time). */
  readBytes?: number;
  /**
   * A fresh grant for each request after the first: for a download paced by Braze, which may
   * outlive its first grant (a SAS lasts 15 minutes, a kept token may have 5 left).
   */
  regrant?: () => Promise<BlobGrant>;
}

const RETRIED_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const MAX_WAIT_MS = 120_000;
/** No byte for this long: the request is dropped (and tried again). */
const IDLE_MS = 60_000;

/** The errors a download throws, naming what it downloads (never the URL: it may hold a SAS). */
export interface DownloadErrors {
  failed(why: string): Error;
  /** The blob is not there (404) before any of its bytes came. */
  gone(): Error;
  /** The blob changed while it was downloaded (a resumed request found another version, or none). */
  changed(): Error;
}

type Attempt =
  | { kind: 'done' }
  | { kind: 'broken'; why: string }
  | { kind: 'failed'; why: string }
  | { kind: 'status'; status: number; code: string | null; requestId: string | null }
  /** A resumed answer that is not the rest of the same blob. */
  | { kind: 'changed' };

/**
 * Downloads the blob `grant` reaches and hands its bytes to `push`, in order, each byte once (the
 * bytes are not used after push returns). A promise from push: it did not take the bytes, and is
 * handed them again once the promise resolves (the download paused meanwhile); rejected, the
 * download fails with its reason. Returns the version (ETag) downloaded. Throws `errors`' errors.
 */
export async function downloadBlob(
  grant: BlobGrant,
  errors: DownloadErrors,
  push: (bytes: Buffer) => void | Promise<void>,
  options: DownloadOptions = {},
  ahead: BlobRequest | null = null,
): Promise<{ etag: string | null }> {
  const tries = options.tries ?? 4;
  const resumes = options.resumes ?? 5;
  const backoffMs = options.backoffMs ?? 4000;
  const body: BodyState = { received: 0, etag: null, length: null, push };
  // A request sent ahead for another blob (never, as the main thread grants them) is not this one's.
  let opened = ahead?.url === grant.url ? ahead : null;
  if (ahead && !opened) ahead.destroy();
  const connection = { idleMs: options.idleMs ?? IDLE_MS, tlsOptions: options.tlsOptions, readBytes: options.readBytes };
  for (let failures = 0, breaks = 0, requests = 0; ;) {
    const before = body.received;
    const sentAhead = opened !== null;
    if (requests++ > 0 && options.regrant) grant = await options.regrant();
    const attempt = await requestOnce(grant, body, connection, opened);
    opened = null;
    if (body.received > before) failures = 0;
    if (attempt.kind === 'done') return { etag: body.etag };
    // One sent ahead that failed or broke off before the blob's turn (its socket idled while
    // the one before was read, or the server dropped it) is only made again now, uncounted.
    if (sentAhead && body.received === before && (attempt.kind === 'failed' || attempt.kind === 'broken')) continue;
    if (attempt.kind === 'changed') throw errors.changed();
    if (attempt.kind === 'broken') {
      if (++breaks > resumes) throw errors.failed(attempt.why);
      // Resumed at once, as the SDK does; without the blob's version, the rest could be another's.
      if (body.received > 0 && !body.etag) throw errors.failed(`${attempt.why}, and the answer named no version to resume`);
      continue;
    }
    if (attempt.kind === 'status') {
      // Gone after some of its bytes came: deleted while it was read, so what was read is another version's.
      if (attempt.status === 404) throw body.received > 0 ? errors.changed() : errors.gone();
      if (attempt.status === 412) throw errors.changed();
      const why = `HTTP ${attempt.status}${attempt.code ? ` (${attempt.code})` : ''}${attempt.requestId ? `, request ${attempt.requestId}` : ''}`;
      if (!RETRIED_STATUSES.has(attempt.status) || ++failures >= tries) throw errors.failed(why);
    } else if (++failures >= tries) throw errors.failed(attempt.why);
    const wait = Math.min(MAX_WAIT_MS, backoffMs * (2 ** (failures - 1) - 1));
    if (wait > 0) await new Promise((r) => setTimeout(r, wait * (0.8 + Math.random() * 0.4)));
  }
}

interface BodyState {
  /** Bytes handed to push so far. */
  received: number;
  /** The blob's version, from the first answer: a resumed request asks for that one. */
  etag: string | null;
  /** The blob's length, from the first answer. */
  length: number | null;
  push: (bytes: Buffer) => void | Promise<void>;
}

/**
 * One GET of a blob, from the moment it is sent: its answer waits (the socket paused once body
 * bytes come) until it is read. So the next partition's request can go while this one is read
 * (openAhead), and its first bytes wait for the thread instead of the thread for them.
 */
export class BlobRequest extends HttpGet {
  constructor(
    readonly url: string,
    headers: Record<string, string>,
    idleMs: number,
    tlsOptions?: tls.ConnectionOptions,
    readBytes?: number,
  ) {
    super(url, headers, idleMs, tlsOptions, readBytes);
  }
}

/** The request for a blob to be read next, sent now (downloadBlob takes it as its first). */
export const openAhead = (grant: BlobGrant, idleMs = IDLE_MS): BlobRequest =>
  new BlobRequest(grant.url, { ...grant.headers }, idleMs);

/**
 * One request, from `body.received` on (`opened`: one sent already for this blob, from its start).
 * Rejects only when push throws.
 */
async function requestOnce(
  grant: BlobGrant,
  body: BodyState,
  connection: { idleMs: number; tlsOptions?: tls.ConnectionOptions; readBytes?: number },
  opened: BlobRequest | null,
): Promise<Attempt> {
  const headers: Record<string, string> = { ...grant.headers };
  const resuming = body.received > 0;
  if (resuming) {
    headers.range = `bytes=${body.received}-`;
    headers['if-match'] = body.etag!;
  }
  const request = opened ?? new BlobRequest(grant.url, headers, connection.idleMs, connection.tlsOptions, connection.readBytes);
  const res = await request.answer;
  if (!res) return { kind: 'failed', why: request.failure };
  const { status } = res;
  if (status !== 200 && status !== 206) {
    request.destroy();
    return { kind: 'status', status, code: res.header('x-ms-error-code'), requestId: res.header('x-ms-request-id') };
  }
  if (!resuming) {
    body.etag = res.header('etag');
    const length = Number(res.header('content-length') ?? NaN);
    body.length = Number.isFinite(length) ? length : null;
  } else if (res.header('etag') !== body.etag || (status === 206 && !rangeStartsAt(res, body.received))) {
    request.destroy();
    return { kind: 'changed' };
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (a: Attempt) => {
      if (settled) return;
      settled = true;
      resolve(a);
    };
    // A server that ignores the range sends the blob from its start: what was pushed is skipped.
    let skip = status === 200 ? body.received : 0;
    const failWith = (e: unknown) => {
      if (settled) return;
      settled = true;
      request.destroy();
      reject(e as Error);
    };
    request.read({
      bytes: (chunk) => {
        if (settled) return;
        const skipped = Math.min(skip, chunk.length);
        const bytes = chunk.subarray(skipped);
        if (bytes.length > 0) {
          let wait: void | Promise<void>;
          try {
            wait = body.push(bytes);
          } catch (e) {
            return failWith(e);
          }
          // Not taken: handed again once push is ready (skip and count stay as they were).
          if (wait instanceof Promise) return wait.then(() => undefined, failWith);
          body.received += bytes.length;
        }
        skip -= skipped;
      },
      end: () =>
        settle(
          body.length === null || body.received >= body.length
            ? { kind: 'done' }
            : { kind: 'broken', why: `the body ended at ${body.received} of ${body.length} bytes` },
        ),
      broke: (why) => settle({ kind: 'broken', why }),
    });
  });
}

/** Whether a 206's `Content-Range` starts where the bytes received end. */
function rangeStartsAt(res: HttpAnswer, at: number): boolean {
  const start = /^bytes (\d+)-/.exec(res.header('content-range') ?? '')?.[1];
  return start !== undefined && Number(start) === at;
}
