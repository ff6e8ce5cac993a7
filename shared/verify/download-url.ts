// Downloading Braze's export from the signed URL in its answer, defensively: the URL is data from
// outside, so only https is fetched (http only to a loopback host the app's local-only
// LOCAL_EXTRA_BRAZE_HOSTS allows, as the sandbox), every redirect hop is checked the same way, the
// headers and each pause in the body are timed out, and the bytes are capped (by Content-Length
// and by counting) below what the temp disk can hold. The URL itself never appears in a message.
import { createWriteStream, statfsSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { RunAborted } from '../engine';

export interface UrlLimits {
  /** `host:port` or `host:*` allowed over http (loopback only; LOCAL_EXTRA_BRAZE_HOSTS). */
  extraHosts?: readonly string[];
  /** Most bytes downloaded (the temp disk's free space less headroom, when smaller). */
  maxBytes: number;
  /** Until the answer's headers (default 30 s), and the longest pause in the body (default 60 s). */
  headersMs?: number;
  idleMs?: number;
}

/** The download cannot be done as asked: the run fails with this reason. */
export class DownloadRefused extends RunAborted {}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
const MAX_HOPS = 5;

/** Room kept free on the temp disk beside Braze's files (the host, logs, the comparison's own temp files). */
const HEADROOM_BYTES = 64 * 1024 * 1024;

/**
 * Most bytes of Braze's files the run folder `dir` takes: half its free space less headroom (the
 * comparison spreads the users over temp files about as large), and at most `max` when given.
 */
export function downloadCap(dir: string, max = Number.MAX_SAFE_INTEGER): number {
  try {
    const s = statfsSync(dir);
    return Math.max(0, Math.min(max, Math.floor((s.bavail * s.bsize - HEADROOM_BYTES) / 2)));
  } catch {
    return max;
  }
}

/** Why `raw` may not be fetched, or null when it may. */
export function urlRefusal(raw: string, extraHosts: readonly string[] = []): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "Braze's export URL is not a valid URL";
  }
  if (url.username || url.password) return "Braze's export URL carries credentials";
  if (url.protocol === 'https:') return null;
  if (url.protocol !== 'http:') return `Braze's export URL uses ${url.protocol}, not https:`;
  const host = url.hostname.toLowerCase();
  const port = url.port || '80';
  const allowed = extraHosts.some((e) => {
    const [h, p] = e.toLowerCase().split(':');
    return h === host && (p === '*' || p === port);
  });
  if (LOOPBACK.has(host) && allowed) return null;
  return "Braze's export URL is not https: (http is allowed only to a loopback host in LOCAL_EXTRA_BRAZE_HOSTS)";
}

/** GET `url`, following at most 5 redirects, each hop checked; throws DownloadRefused for a refused hop. */
export async function getChecked(url: string, limits: UrlLimits): Promise<Response> {
  let at = url;
  for (let hop = 0; ; hop++) {
    const refused = urlRefusal(at, limits.extraHosts);
    if (refused) throw new DownloadRefused(hop ? `${refused} (after a redirect)` : refused);
    const res = await fetch(at, { redirect: 'manual', signal: AbortSignal.timeout(limits.headersMs ?? 30_000) });
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) return res;
    await res.body?.cancel().catch(() => undefined);
    if (hop >= MAX_HOPS) throw new DownloadRefused(`Braze's export URL redirected more than ${MAX_HOPS} times`);
    at = new URL(location, at).toString();
  }
}

/** Counts bytes (failing past `max`) and fails when no byte comes for `idleMs`. */
export function guarded(max: number, idleMs: number, what: string): Transform {
  let seen = 0;
  let timer: NodeJS.Timeout | undefined;
  const t: Transform = new Transform({
    transform(chunk: Buffer, _enc, done) {
      arm();
      seen += chunk.length;
      if (seen > max) return done(new DownloadRefused(`${what} is larger than the ${max} bytes allowed`));
      done(null, chunk);
    },
    flush(done) {
      clearTimeout(timer);
      done();
    },
    destroy(err, done) {
      clearTimeout(timer);
      done(err);
    },
  });
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => t.destroy(new DownloadRefused(`${what} stalled: no data for ${idleMs / 1000} s`)), idleMs);
  };
  arm();
  return t;
}

/** Writes a 2xx answer's body to `file` within the limits. */
export async function saveBody(res: Response, file: string, limits: UrlLimits): Promise<void> {
  const length = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(length) && length > limits.maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new DownloadRefused(
      `Braze's export is ${length} bytes, more than the ${limits.maxBytes} the instance's temporary folder can take`,
    );
  }
  const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  await pipeline(body, guarded(limits.maxBytes, limits.idleMs ?? 60_000, "Braze's export"), createWriteStream(file));
}
