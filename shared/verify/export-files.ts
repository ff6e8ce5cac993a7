// Braze's export files, both ways Braze delivers them: from the URL in its answer (it answers 403/404
// until the export is ready; polled) or written into the customer's Azure Blob container under
// segment-export/<segment>/<date>/<object_prefix>/ (no URL; ready once the listing stops growing).
// Files go to the run's temp folder as bytes, and are read back one user line at a time: a zip of
// JSON-lines files or a gzip of JSON lines, never the whole export in memory.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import type { ContainerClient } from '@azure/storage-blob';
import yauzl from 'yauzl';
import { statusOf } from '../store/table-errors';
import { DownloadRefused, getChecked, saveBody, type UrlLimits } from './download-url';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Waiting {
  pollMs: number;
  /** Stop polling at this time (the attempt's time box or the run's bound, whichever is first). */
  until: number;
  shouldStop: () => boolean;
  /** Container delivery: the listing must stay unchanged this long before it is taken as complete (default 2 min). */
  stableMs?: number;
  /**
   * Container delivery: the listing as last seen and since when it has not changed (a digest, epoch ms),
   * carried from one attempt to the next so a re-queued attempt continues the window; updated as it looks.
   */
  listing?: { digest: string; since: number };
}

/** Files downloaded, and the seconds the download took (the wait for Braze apart). */
export interface Downloaded {
  files: string[];
  seconds: number;
}

/** Downloads the archive behind Braze's URL once it is ready; null if it was not ready by `until`. */
export async function downloadWhenReady(url: string, file: string, w: Waiting, limits: UrlLimits): Promise<Downloaded | null> {
  for (;;) {
    const started = Date.now();
    let res: Response;
    try {
      res = await getChecked(url, limits);
    } catch (e) {
      if (e instanceof DownloadRefused) throw e;
      // The network, not Braze's readiness: tried again while there is time, then said as it is.
      const why = ((e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name) || 'network error';
      if (Date.now() + w.pollMs > w.until || w.shouldStop())
        throw new DownloadRefused(`Braze's export URL could not be reached (${why}); verify again later`);
      await sleep(w.pollMs);
      continue;
    }
    if (res.ok && res.body) {
      await saveBody(res, file, limits);
      return { files: [file], seconds: (Date.now() - started) / 1000 };
    }
    await res.body?.cancel().catch(() => undefined);
    if (res.status !== 403 && res.status !== 404)
      throw new DownloadRefused(`Braze's export URL answered HTTP ${res.status} (${res.statusText}) instead of the files`);
    if (Date.now() + w.pollMs > w.until || w.shouldStop()) return null;
    await sleep(w.pollMs);
  }
}

/** The export's files in the container: every blob under the segment's folder whose path holds the object prefix. */
async function listExport(container: ContainerClient, segmentId: string, objectPrefix: string) {
  const found: { name: string; size: number }[] = [];
  try {
    for await (const b of container.listBlobsFlat({ prefix: `segment-export/${segmentId}/` }))
      if (b.name.includes(`/${objectPrefix}/`)) found.push({ name: b.name, size: b.properties.contentLength ?? 0 });
  } catch (e) {
    // No container yet: Braze has written nothing there so far.
    if (statusOf(e) !== 404) throw e;
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Downloads the export's files from the container once Braze has written them (some files, and the
 * same listing for `stableMs`: Braze writes them one after another and says nothing when done).
 * Null if they were not there by `until`; `w.listing` then says what was seen, and since when.
 */
export async function downloadFromContainer(
  container: ContainerClient,
  segmentId: string,
  objectPrefix: string,
  dir: string,
  w: Waiting,
): Promise<Downloaded | null> {
  const seen = (w.listing ??= { digest: '', since: Date.now() });
  for (;;) {
    const files = await listExport(container, segmentId, objectPrefix);
    const digest = createHash('sha256').update(JSON.stringify(files)).digest('hex').slice(0, 32);
    const same = files.length > 0 && digest === seen.digest;
    if (!same) Object.assign(seen, { digest, since: Date.now() });
    // Braze says nothing when done: a listing unchanged for the whole window is taken as the export.
    if (same && Date.now() - seen.since >= (w.stableMs ?? 120_000)) {
      const started = Date.now();
      const out: string[] = [];
      for (const [i, f] of files.entries()) {
        const file = path.join(dir, `export-${i}`);
        await container.getBlobClient(f.name).downloadToFile(file);
        out.push(file);
      }
      return { files: out, seconds: (Date.now() - started) / 1000 };
    }
    if (Date.now() + w.pollMs > w.until || w.shouldStop()) return null;
    await sleep(w.pollMs);
  }
}

/** Longest user line read: a user with only the fields asked for is far smaller. */
const MAX_LINE_BYTES = 4 * 1024 * 1024;
/** Most bytes a file unpacks to: this many times its own size (JSON lines pack about 10:1), at least 256 MB. */
const UNPACK_RATIO = 100;
const MIN_UNPACKED = 256 * 1024 * 1024;

/** Calls `onLine` for each non-empty line of a stream; fails past `budget.left` bytes or on a line too long. */
async function eachLine(stream: NodeJS.ReadableStream, onLine: (line: string) => void, budget: { left: number }): Promise<void> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    budget.left -= chunk.length;
    if (budget.left < 0)
      throw new DownloadRefused("Braze's export unpacks to more bytes than it could hold: the file looks damaged");
    const buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      const line = buf.toString('utf8', start, nl > start && buf[nl - 1] === 13 ? nl - 1 : nl);
      if (line) onLine(line);
      start = nl + 1;
    }
    rest = buf.subarray(start);
    if (rest.length > MAX_LINE_BYTES)
      throw new DownloadRefused(`A line of Braze's export is longer than ${MAX_LINE_BYTES} bytes: the file looks damaged`);
  }
  const last = rest.toString('utf8').replace(/\r$/, '');
  if (last) onLine(last);
}

function zipEntries(file: string, onLine: (line: string) => void, budget: { left: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, autoClose: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('unreadable zip'));
      zip.on('error', reject);
      zip.on('end', () => resolve());
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName.endsWith('/')) return zip.readEntry();
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e ?? new Error('unreadable zip entry'));
          const inner = entry.fileName.endsWith('.gz') ? stream.pipe(createGunzip()) : stream;
          eachLine(inner, onLine, budget).then(() => zip.readEntry(), reject);
        });
      });
      zip.readEntry();
    });
  });
}

/** Each user line of one of Braze's files: a zip of JSON-lines files, or a gzip (told apart by their first bytes). */
export async function readUserLines(file: string, onLine: (line: string) => void): Promise<void> {
  const handle = await open(file, 'r');
  const head = Buffer.alloc(2);
  try {
    await handle.read(head, 0, 2, 0);
  } finally {
    await handle.close();
  }
  const budget = { left: Math.max(MIN_UNPACKED, (await stat(file)).size * UNPACK_RATIO) };
  if (head[0] === 0x50 && head[1] === 0x4b) return zipEntries(file, onLine, budget);
  if (head[0] === 0x1f && head[1] === 0x8b) return eachLine(createReadStream(file).pipe(createGunzip()), onLine, budget);
  return eachLine(createReadStream(file), onLine, budget);
}
