// Braze's export files, both ways Braze delivers them: from the URL in its answer (it answers 403/404
// until the export is ready; polled) or written into the customer's Azure Blob container under
// segment-export/<segment>/<date>/<object_prefix>/ (no URL; ready once the listing stops growing).
// Files go to the run's temp folder as bytes, and are read back one user line at a time: a zip of
// JSON-lines files or a gzip of JSON lines, never the whole export in memory.
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { createGunzip } from 'node:zlib';
import type { ContainerClient } from '@azure/storage-blob';
import yauzl from 'yauzl';
import { statusOf } from '../store/table-errors';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Waiting {
  pollMs: number;
  /** Stop polling at this time (the attempt's time box or the run's bound, whichever is first). */
  until: number;
  shouldStop: () => boolean;
}

/** Files downloaded, and the seconds the download took (the wait for Braze apart). */
export interface Downloaded {
  files: string[];
  seconds: number;
}

/** Downloads the archive behind Braze's URL once it is ready; null if it was not ready by `until`. */
export async function downloadWhenReady(url: string, file: string, w: Waiting): Promise<Downloaded | null> {
  for (;;) {
    const started = Date.now();
    const res = await fetch(url).catch(() => null);
    if (res?.ok && res.body) {
      await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(file));
      return { files: [file], seconds: (Date.now() - started) / 1000 };
    }
    await res?.body?.cancel().catch(() => undefined);
    if (res && res.status !== 403 && res.status !== 404)
      throw new Error(`Braze's export URL answered HTTP ${res.status} (${res.statusText}) instead of the files`);
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
 * same listing two polls running: Braze writes them one after another and says nothing when done).
 * Null if they were not there by `until`.
 */
export async function downloadFromContainer(
  container: ContainerClient,
  segmentId: string,
  objectPrefix: string,
  dir: string,
  w: Waiting,
): Promise<Downloaded | null> {
  let last = '';
  for (;;) {
    const files = await listExport(container, segmentId, objectPrefix);
    const listing = JSON.stringify(files);
    if (files.length > 0 && listing === last) {
      const started = Date.now();
      const out: string[] = [];
      for (const [i, f] of files.entries()) {
        const file = path.join(dir, `export-${i}`);
        await container.getBlobClient(f.name).downloadToFile(file);
        out.push(file);
      }
      return { files: out, seconds: (Date.now() - started) / 1000 };
    }
    last = listing;
    if (Date.now() + w.pollMs > w.until || w.shouldStop()) return null;
    await sleep(w.pollMs);
  }
}

/** Calls `onLine` for each non-empty line of a stream. */
async function eachLine(stream: NodeJS.ReadableStream, onLine: (line: string) => void): Promise<void> {
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) if (line) onLine(line);
}

function zipEntries(file: string, onLine: (line: string) => void): Promise<void> {
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
          eachLine(inner, onLine).then(() => zip.readEntry(), reject);
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
  if (head[0] === 0x50 && head[1] === 0x4b) return zipEntries(file, onLine);
  if (head[0] === 0x1f && head[1] === 0x8b) return eachLine(createReadStream(file).pipe(createGunzip()), onLine);
  return eachLine(createReadStream(file), onLine);
}
