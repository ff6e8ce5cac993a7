// A partition downloaded by the engine thread itself: from Azurite with the grant the main thread
// makes (a read-only SAS), and from a loopback server that fails the ways storage does: a body
// that breaks off is resumed where it stopped, on the same version of the blob; a busy server or a
// dropped connection is tried again; a blob that is gone or changed fails the run with a reason
// that never holds the SAS. The run waiting for the thread stops when asked. A bucket of the sync
// state comes the same way, to a file; one that changes meanwhile is another worker's.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { BlobClient, ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { afterEach, describe, expect, it } from 'vitest';
import { RunStopped, StateTakenOver } from '../../shared/engine';
import { SyncStateStore } from '../../shared/engine/state/sync-state';
import { openAhead, type BlobRequest, type DownloadOptions } from '../../shared/store/blob-download';
import { downloadPartition } from '../../shared/engine/read/partition-download';
import { PartitionAborted } from '../../shared/engine/read/column-check';
import { EngineThread } from '../../shared/engine/run/engine-thread-client';
import { EngineThreads } from '../../shared/engine/run/engine-threads';
import { threadLimits } from '../../shared/engine/run/thread-sizing';
import { ROW_SPILLS } from '../../shared/engine/spill/bucket-files';
import { downloadGrant } from '../../shared/store/blob-grant';
import { services } from '../../shared/services';
import { exportDefinition } from '../helpers/definition';
import { useAzurite } from '../helpers/app';
import { LOCALHOST_CERT, LOCALHOST_KEY } from '../../scripts/localhost-tls';

useAzurite();

const BLOB = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `c${i},u${i},user${i}@example.com\n`).join(''));
const fast: DownloadOptions = { backoffMs: 5, idleMs: 300 };

/** Downloads with `grant`, as the engine thread does (`ahead`: a request sent before): every byte pushed, in order. */
async function download(
  grant: { url: string; headers: Record<string, string> },
  options = fast,
  ahead: BlobRequest | null = null,
): Promise<Buffer> {
  const pieces: Buffer[] = [];
  await downloadPartition(grant, 'Seg/Seg_1.csv', (bytes) => void pieces.push(Buffer.from(bytes)), options, ahead);
  return Buffer.concat(pieces);
}

/** The blob's bytes, each once, in order (compared whole: element by element, toEqual takes seconds). */
function expectTheBlob(bytes: Buffer): void {
  expect(bytes.length).toBe(BLOB.length);
  expect(bytes.equals(BLOB)).toBe(true);
}

interface Seen {
  /** The blob asked for (the URL's path). */
  path: string;
  range?: string;
  ifMatch?: string;
  authorization?: string;
  userAgent?: string;
}

const servers: (http.Server | https.Server)[] = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));

type Answer = (n: number, res: http.ServerResponse, from: number) => 'serve' | void;

/** The blob from `from` on, as storage answers: 200 whole, 206 with its range. */
function serve(res: http.ServerResponse, from: number, etag = '"v1"'): void {
  const range = from > 0 ? { 'content-range': `bytes ${from}-${BLOB.length - 1}/${BLOB.length}` } : {};
  res.writeHead(from > 0 ? 206 : 200, { etag, 'content-length': BLOB.length - from, ...range });
  res.end(BLOB.subarray(from));
}

/** The first `bytes` of the blob, then the connection cut. */
function cutAfter(res: http.ServerResponse, bytes: number): void {
  res.writeHead(200, { etag: '"v1"', 'content-length': BLOB.length });
  res.write(BLOB.subarray(0, bytes), () => res.destroy());
}

/** A loopback server for BLOB: `answer` decides each request's fate (by its number), and what each asked is kept. */
async function storage(answer: Answer): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const n = seen.length;
    seen.push({
      path: new URL(req.url!, 'http://x').pathname,
      range: req.headers.range,
      ifMatch: req.headers['if-match'] as string | undefined,
      authorization: req.headers.authorization,
      userAgent: req.headers['user-agent'],
    });
    const from = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
    if (answer(n, res, from) === 'serve') serve(res, from);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ci/Seg_1.csv?sig=SECRET`, seen };
}

/** Runs `work` with HTTP_PROXY naming a forward proxy (it gets the whole URL and fetches it); the URLs it was asked for. */
async function withProxy(work: () => Promise<unknown>): Promise<string[]> {
  const proxied: string[] = [];
  const proxy = http.createServer((req, res) => {
    proxied.push(req.url!);
    http.get(req.url!, { headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
  });
  servers.push(proxy);
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  Object.assign(process.env, { HTTP_PROXY: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` });
  try {
    await work();
  } finally {
    delete process.env.HTTP_PROXY;
  }
  return proxied;
}

const rangeStart = (s: Seen) => Number(/bytes=(\d+)-/.exec(s.range ?? '')?.[1] ?? -1);

describe('a partition downloaded by the engine thread', () => {
  it('from Azurite with a read-only SAS made from the account key; a deleted partition is gone, with the reason', async () => {
    const container = services().storage.ciBlobs.getContainerClient(`dl-${randomUUID().slice(0, 8)}`);
    await container.create();
    const blob = container.getBlockBlobClient('Seg/Seg_1.csv');
    await blob.uploadData(BLOB);
    const grant = await downloadGrant(blob);
    expect(new URL(grant.url).searchParams.get('sp')).toBe('r');
    expectTheBlob(await download(grant));

    await blob.delete();
    const gone = await download(grant).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(PartitionAborted);
    expect((gone as Error).message).toMatch(/Seg\/Seg_1\.csv of the snapshot this run is pinned to is gone/);
  });

  it('a body that breaks off is resumed where it stopped, on the same version, each byte once', async () => {
    const { url, seen } = await storage((n, res) => (n > 0 ? 'serve' : cutAfter(res, 100_000)));
    expectTheBlob(await download({ url, headers: {} }));
    expect(seen.map((s) => s.ifMatch)).toEqual([undefined, '"v1"']);
    expect(seen[0]!.range).toBeUndefined();
    expect(rangeStart(seen[1]!)).toBeGreaterThan(0);
  });

  it('over https, as from Blob Storage: a body that breaks off is resumed on the same version, each byte once', async () => {
    const seen: Seen[] = [];
    const server = https.createServer({ cert: LOCALHOST_CERT, key: LOCALHOST_KEY }, (req, res) => {
      seen.push({ path: req.url!, range: req.headers.range, ifMatch: req.headers['if-match'] as string | undefined });
      const from = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
      if (seen.length === 1) cutAfter(res, 300_000);
      else serve(res, from);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, 'localhost', r));
    const url = `https://localhost:${(server.address() as AddressInfo).port}/ci/Seg_1.csv?sig=SECRET`;
    expectTheBlob(await download({ url, headers: {} }, { ...fast, tlsOptions: { ca: LOCALHOST_CERT } }));
    expect(seen.map((s) => s.ifMatch)).toEqual([undefined, '"v1"']);
    expect(rangeStart(seen[1]!)).toBeGreaterThan(0);
    // A certificate the machine does not trust: refused, tried again, and the reason named without the SAS.
    const refused = (await download({ url, headers: {} }).catch((e: unknown) => e)) as Error;
    expect(refused.message).toBe('Downloading partition Seg/Seg_1.csv failed: DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  it('a download that outlives its grant resumes with a fresh one (as paced by Braze, it may take minutes)', async () => {
    // The first grant's signature stops being accepted once the body broke off (it expired meanwhile).
    const sigs: string[] = [];
    const { url } = await storage((_, res, from) => {
      if (sigs.length === 1) return cutAfter(res, 100_000); // each download's first request
      if (sigs.at(-1) !== 'FRESH') return void res.writeHead(403, { 'x-ms-error-code': 'AuthenticationFailed' }).end();
      return serve(res, from);
    });
    const server = servers.at(-1)!;
    server.prependListener('request', (req: http.IncomingMessage) =>
      sigs.push(new URL(req.url!, 'http://x').searchParams.get('sig')!),
    );
    const expired = (await download({ url, headers: {} }).catch((e: unknown) => e)) as Error;
    expect(expired.message).toBe('Downloading partition Seg/Seg_1.csv failed: HTTP 403 (AuthenticationFailed)');
    sigs.length = 0;
    const regrant = async () => ({ url: url.replace('sig=SECRET', 'sig=FRESH'), headers: {} });
    expectTheBlob(await download({ url, headers: {} }, { ...fast, regrant }));
    expect(sigs).toEqual(['SECRET', 'FRESH']);
  });

  it('a server that ignores the range (the whole blob again) still gives each byte once', async () => {
    const { url, seen } = await storage((n, res) => (n === 0 ? cutAfter(res, 50_000) : serve(res, 0)));
    expectTheBlob(await download({ url, headers: {} }));
    expect(rangeStart(seen[1]!)).toBeGreaterThan(0); // it was asked for the rest, and sent all
  });

  it('a resumed answer of another version, or of another range, fails the run: the partition changed', async () => {
    for (const resumed of [
      (res: http.ServerResponse, from: number) => serve(res, from, '"v2"'),
      (res: http.ServerResponse, from: number) => serve(res, from - 1),
      (res: http.ServerResponse) => void res.writeHead(412, { 'x-ms-error-code': 'ConditionNotMet' }).end(),
    ]) {
      const { url } = await storage((n, res, from) => (n === 0 ? cutAfter(res, 100_000) : resumed(res, from)));
      const error = await download({ url, headers: {} }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PartitionAborted);
      expect((error as Error).message).toMatch(/Seg\/Seg_1\.csv of the snapshot this run is pinned to changed while it was read/);
    }
  });

  it('a body that stalls is dropped after the idle time and resumed', async () => {
    const { url, seen } = await storage((n, res) => {
      if (n > 0) return 'serve';
      res.writeHead(200, { etag: '"v1"', 'content-length': BLOB.length });
      res.write(BLOB.subarray(0, 10_000)); // and nothing more
    });
    expectTheBlob(await download({ url, headers: {} }));
    expect(seen).toHaveLength(2);
  });

  it('a body that keeps breaking off fails after five resumes, saying why', async () => {
    const { url, seen } = await storage((_, res, from) => {
      res.writeHead(from > 0 ? 206 : 200, {
        etag: '"v1"',
        'content-length': BLOB.length - from,
        ...(from > 0 ? { 'content-range': `bytes ${from}-${BLOB.length - 1}/${BLOB.length}` } : {}),
      });
      res.write(BLOB.subarray(from, from + 1000), () => res.destroy());
    });
    await expect(download({ url, headers: {} })).rejects.toThrow(/^Downloading partition Seg\/Seg_1\.csv failed: /);
    expect(seen).toHaveLength(6);
  });

  it('a busy server (503) is tried again; one that stays busy fails the run naming its answer, not the SAS', async () => {
    const busy = (res: http.ServerResponse) =>
      void res.writeHead(503, { 'x-ms-error-code': 'ServerBusy', 'x-ms-request-id': 'req-7' }).end();
    const twice = await storage((n, res) => (n < 2 ? busy(res) : 'serve'));
    expectTheBlob(await download({ url: twice.url, headers: {} }));
    expect(twice.seen).toHaveLength(3);

    const always = await storage((_, res) => busy(res));
    const error = (await download({ url: always.url, headers: {} }).catch((e: unknown) => e)) as Error;
    expect(error.message).toBe('Downloading partition Seg/Seg_1.csv failed: HTTP 503 (ServerBusy), request req-7');
    expect(always.seen).toHaveLength(4);
  });

  it('connections dropped before an answer are tried again, counted afresh once bytes came', async () => {
    const drop = (res: http.ServerResponse) => void res.socket!.destroy();
    // Two drops, some bytes, two drops, the rest: never four failures in a row.
    const { url, seen } = await storage((n, res) => (n === 2 ? cutAfter(res, 100_000) : n < 5 ? drop(res) : 'serve'));
    expectTheBlob(await download({ url, headers: {} }));
    expect(seen).toHaveLength(6);

    const always = await storage((_, res) => drop(res));
    const error = (await download({ url: always.url, headers: {} }).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/^Downloading partition Seg\/Seg_1\.csv failed: E[A-Z]+$/);
    expect(error.message).not.toContain('SECRET');
    expect(always.seen).toHaveLength(4);
  });

  it('a refusal (403) fails at once', async () => {
    const refused = await storage((_, res) => void res.writeHead(403, { 'x-ms-error-code': 'AuthorizationFailure' }).end());
    await expect(download({ url: refused.url, headers: {} })).rejects.toThrow('HTTP 403 (AuthorizationFailure)');
    expect(refused.seen).toHaveLength(1);
  });

  it('takes a request sent ahead (while the partition before was read) as its first; one that failed is made again', async () => {
    const { url, seen } = await storage(() => 'serve');
    const ahead = openAhead({ url, headers: {} });
    await new Promise((r) => setTimeout(r, 100)); // answered meanwhile, its body waiting
    expectTheBlob(await download({ url, headers: {} }, fast, ahead));
    expect(seen).toHaveLength(1);

    // Its connection dropped before it was read: asked again, as any request that failed is.
    const dropped = await storage((n, res) => (n > 0 ? 'serve' : void res.socket!.destroy()));
    const lost = openAhead({ url: dropped.url, headers: {} }, fast.idleMs);
    await new Promise((r) => setTimeout(r, 100));
    expectTheBlob(await download({ url: dropped.url, headers: {} }, fast, lost));
    expect(dropped.seen).toHaveLength(2);
  });

  it('a request sent ahead whose connection went while it waited is made again, not counted as a resume', async () => {
    // Answered, then the connection dropped (or idle too long) before the partition's turn came.
    const { url, seen } = await storage((n, res) => {
      if (n > 0) return 'serve';
      res.writeHead(200, { etag: '"v1"', 'content-length': BLOB.length });
      res.flushHeaders();
      setTimeout(() => res.destroy(), 50);
    });
    const ahead = openAhead({ url, headers: {} });
    await new Promise((r) => setTimeout(r, 200));
    expectTheBlob(await download({ url, headers: {} }, { ...fast, resumes: 0 }, ahead));
    expect(seen.map((s) => s.range)).toEqual([undefined, undefined]); // the blob from its start, as a first request
  });

  it('a request sent ahead for another blob is dropped, never read as this one', async () => {
    const { url, seen } = await storage((n, res) => {
      if (!seen[n]!.path.endsWith('Seg_9.csv')) return 'serve';
      res.writeHead(200, { etag: '"v9"', 'content-length': 6 });
      res.end('WRONG\n');
    });
    const other = openAhead({ url: url.replace('Seg_1.csv', 'Seg_9.csv'), headers: {} });
    await new Promise((r) => setTimeout(r, 100)); // answered, and waiting
    expectTheBlob(await download({ url, headers: {} }, fast, other));
    expect(seen.map((s) => s.path).sort()).toEqual(['/ci/Seg_1.csv', '/ci/Seg_9.csv']);
  });

  it('what push throws fails the download at once, untried', async () => {
    const { url, seen } = await storage(() => 'serve');
    const failing = downloadPartition({ url, headers: {} }, 'Seg/Seg_1.csv', () => {
      throw new Error('the reader failed');
    });
    await expect(failing).rejects.toThrow('the reader failed');
    expect(seen).toHaveLength(1);
  });
});

describe('a run reading a partition on the engine thread', () => {
  const columns = [{ name: 'CustomerId' }, { name: 'BrazeUserId' }, { name: 'Email' }];

  const init = (tempDir: string) => ({
    def: exportDefinition({
      segments: ['Seg'],
      matching: { profileId: 'CustomerId', email: 'Email', brazeCustomerId: 'BrazeUserId', attributes: {} },
    }),
    bucketCount: 4,
    tempDir,
    done: [],
    early: null,
    definitionFp: 'fp',
    runId: 'run',
    fullSync: false,
    tableColumns: { Seg: columns },
  });
  const run = (url: string, shouldStop: () => boolean) => ({
    tables: [
      {
        segment: 'Seg',
        columns,
        partitions: [{ blobName: 'Seg_1.csv', sizeBytes: BLOB.length, delimiter: ',', hasHeader: false }],
      },
    ],
    // Anonymous: the grant is the URL as it is (its SAS included).
    container: new ContainerClient(url.slice(0, url.lastIndexOf('/')) + '?sig=SECRET'),
    early: null,
    shouldStop,
    onProgress: () => undefined,
  });

  /** Reads the partition at `url` as a run with one reading thread does: the thread downloads it. */
  async function readPartition(url: string, shouldStop: () => boolean = () => false): Promise<unknown> {
    const tempDir = mkdtempSync(path.join(os.tmpdir(), 'thread-download-'));
    const thread = new EngineThread({ ...init(tempDir), spillKind: ROW_SPILLS[0] }, threadLimits(BLOB.length, false));
    try {
      return await thread.partition({ ...run(url, shouldStop), threadDownloads: true });
    } finally {
      await thread.close();
      rmSync(tempDir, { recursive: true, force: true });
    }
  }

  it('reads it on the thread, without the SDK; a refusal reaches the run with its reason and without the SAS', async () => {
    const ok = await storage(() => 'serve');
    expect(await readPartition(ok.url)).toMatchObject({ rowsRead: 40_000, rowsRejected: 0 });
    expect(ok.seen[0]!.userAgent ?? '').not.toMatch(/azsdk/);

    const refused = await storage((_, res) => void res.writeHead(403, { 'x-ms-error-code': 'AuthorizationFailure' }).end());
    const error = (await readPartition(refused.url).catch((e: unknown) => e)) as Error;
    expect(error.message).toBe(
      'the engine thread failed: Downloading partition Seg_1.csv failed: HTTP 403 (AuthorizationFailure)',
    );
  });

  it('with two reading threads, the main thread downloads for both, beside their parsing, through the same GET (not the SDK)', async () => {
    const { url, seen } = await storage(() => 'serve');
    const tempDir = mkdtempSync(path.join(os.tmpdir(), 'two-readers-'));
    const threads = new EngineThreads(init(tempDir), BLOB.length, true, false);
    try {
      expect(await threads.partition(run(url, () => false))).toMatchObject({ rowsRead: 40_000 });
    } finally {
      await threads.close();
      rmSync(tempDir, { recursive: true, force: true });
    }
    expect(seen).toHaveLength(1);
    expect(seen[0]!.userAgent ?? '').not.toMatch(/azsdk/);
  });

  it('with a proxy named in the environment, the main thread downloads it through the SDK, which takes the proxy', async () => {
    const { url, seen } = await storage(() => 'serve');
    const proxied = await withProxy(async () => expect(await readPartition(url)).toMatchObject({ rowsRead: 40_000 }));
    expect(proxied).toEqual([expect.stringMatching(/\/ci\/Seg_1\.csv\?sig=SECRET$/)]);
    expect(seen[0]!.userAgent).toMatch(/azsdk-js-azure-storage-blob/);
  });

  it('asks for the next partition while this one is read, so its first bytes wait for the thread', async () => {
    // Seg_1's body stops half-way until Seg_2 is asked for (or 3 s pass): asked only once Seg_1
    // ended, Seg_2 would come after that end.
    const events: string[] = [];
    let secondAsked = () => undefined as void;
    const asked = new Promise<void>((r) => (secondAsked = r));
    const { url, seen } = await storage((_, res) => {
      const seg = seen.at(-1)!.path.endsWith('Seg_2.csv') ? 'Seg_2' : 'Seg_1';
      events.push(`asked ${seg}`);
      if (seg === 'Seg_2') {
        secondAsked();
        return 'serve';
      }
      res.writeHead(200, { etag: '"v1"', 'content-length': BLOB.length });
      res.write(BLOB.subarray(0, BLOB.length / 2));
      void Promise.race([asked, new Promise((r) => setTimeout(r, 3000))]).then(() => {
        events.push('Seg_1 ended');
        res.end(BLOB.subarray(BLOB.length / 2));
      });
    });
    const tempDir = mkdtempSync(path.join(os.tmpdir(), 'thread-ahead-'));
    const thread = new EngineThread({ ...init(tempDir), spillKind: ROW_SPILLS[0] }, threadLimits(BLOB.length, false));
    const partitions = ['Seg_1.csv', 'Seg_2.csv'].map((blobName) => ({
      blobName,
      sizeBytes: BLOB.length,
      delimiter: ',',
      hasHeader: false,
    }));
    const twoPartitions = { ...run(url, () => false), threadDownloads: true };
    twoPartitions.tables[0]!.partitions = partitions;
    try {
      expect(await thread.partition(twoPartitions)).toMatchObject({ rowsRead: 80_000, rowsRejected: 0 });
    } finally {
      await thread.close();
      rmSync(tempDir, { recursive: true, force: true });
    }
    expect(events).toEqual(['asked Seg_1', 'asked Seg_2', 'Seg_1 ended']);
    expect(seen).toHaveLength(2);
  });

  it('asked to stop while the download stalls, stops within a second', async () => {
    // Headers and a first piece, then nothing: the thread waits for bytes that do not come.
    const { url } = await storage((_, res) => {
      res.writeHead(200, { etag: '"v1"', 'content-length': BLOB.length });
      res.write(BLOB.subarray(0, 10_000));
    });
    let stop = false;
    setTimeout(() => (stop = true), 300);
    const started = Date.now();
    await expect(readPartition(url, () => stop)).rejects.toBeInstanceOf(RunStopped);
    expect(Date.now() - started).toBeLessThan(1300);
  });
});

describe('the grant the main thread makes for a partition', () => {
  it('by key: a read-only SAS for the blob, over https only, for 15 minutes; the service version named', async () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    const blob = new BlobClient('https://ci.blob.core.windows.net/c/Seg/Seg_1.csv', new StorageSharedKeyCredential('ci', key));
    const grant = await downloadGrant(blob);
    const sas = new URL(grant.url).searchParams;
    expect([sas.get('sp'), sas.get('spr'), sas.get('sr')]).toEqual(['r', 'https', 'b']);
    const minutes = (Date.parse(sas.get('se')!) - Date.now()) / 60_000;
    expect(minutes).toBeGreaterThan(13);
    expect(minutes).toBeLessThanOrEqual(15);
    expect(grant.headers).toEqual({ 'x-ms-version': expect.stringMatching(/^20\d\d-\d\d-\d\d$/) });
  });

  it('by identity: a bearer token over https only, asked for again only near its expiry', async () => {
    let asked = 0;
    let lifeMs = 3_600_000;
    const identity = {
      getToken: async () => ({ token: `TOKEN${++asked}`, expiresOnTimestamp: Date.now() + lifeMs }),
    };
    const blob = new BlobClient('https://ci.blob.core.windows.net/c/Seg/Seg_1.csv', identity);
    const grant = await downloadGrant(blob);
    expect(grant).toEqual({
      url: 'https://ci.blob.core.windows.net/c/Seg/Seg_1.csv',
      headers: { authorization: 'Bearer TOKEN1', 'x-ms-version': expect.stringMatching(/^20\d\d-\d\d-\d\d$/) },
    });
    expect((await downloadGrant(blob)).headers.authorization).toBe('Bearer TOKEN1');
    // A token with less than five minutes left is not handed to a download.
    lifeMs = 4 * 60_000;
    const identity2 = { getToken: identity.getToken };
    const blob2 = new BlobClient('https://ci.blob.core.windows.net/c/Seg/Seg_2.csv', identity2);
    expect((await downloadGrant(blob2)).headers.authorization).toBe('Bearer TOKEN2');
    expect((await downloadGrant(blob2)).headers.authorization).toBe('Bearer TOKEN3');
    expect(asked).toBe(3);
    await expect(downloadGrant(new BlobClient('http://127.0.0.1:1/c/Seg_1.csv', identity))).rejects.toThrow(/https/);
  });

  it('the bearer token is sent as the grant says', async () => {
    const { url, seen } = await storage(() => 'serve');
    expectTheBlob(await download({ url, headers: { authorization: 'Bearer TOKEN' } }));
    expect(seen[0]!.authorization).toBe('Bearer TOKEN');
  });

  it('a SAS already in the connection string: the URL as it is', async () => {
    const grant = await downloadGrant(new BlobClient('https://ci.blob.core.windows.net/c/Seg_1.csv?sv=2021-08-06&sig=abc'));
    expect(grant.url).toBe('https://ci.blob.core.windows.net/c/Seg_1.csv?sv=2021-08-06&sig=abc');
  });
});

describe('a bucket of the sync state, downloaded for the engine thread', () => {
  /** Bucket 3 of an export's state over `storage`'s server (a SAS in the URL, as a connection string may hold one), into a temp file. */
  async function downloadBucket3(url: string) {
    const state = new SyncStateStore(new ContainerClient(url.replace('/ci/Seg_1.csv', '/state')), 'export-1');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'state-download-'));
    const file = path.join(dir, 'state-3.tsv');
    try {
      const downloaded = await state.downloadBucket(3, file).catch((e: unknown) => e as Error);
      return { downloaded, bytes: existsSync(file) ? readFileSync(file) : null };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it("goes to the file through the app's GET, not the SDK, a cut body resumed on the same version; its ETag is the one read", async () => {
    const { url, seen } = await storage((n, res) => (n === 0 ? cutAfter(res, 100_000) : 'serve'));
    const { downloaded, bytes } = await downloadBucket3(url);
    expect(downloaded).toEqual({ found: true, etag: '"v1"', early: false, refused: null });
    expect(bytes!.equals(BLOB)).toBe(true);
    expect(seen.map((s) => [s.path, rangeStart(s), s.ifMatch])).toEqual([
      ['/state/export-1/b3.tsv', -1, undefined],
      ['/state/export-1/b3.tsv', 100_000, '"v1"'],
    ]);
    expect(seen[0]!.userAgent ?? '').not.toMatch(/azsdk/);
  });

  it('a bucket written, or deleted, by another worker while it is downloaded stops the run: its state is taken over', async () => {
    for (const status of [412, 404]) {
      const { url } = await storage((n, res) => (n === 0 ? cutAfter(res, 100_000) : void res.writeHead(status).end()));
      const { downloaded } = await downloadBucket3(url);
      expect(downloaded).toBeInstanceOf(StateTakenOver);
      expect((downloaded as Error).message).toBe('the sync state of bucket 3 was written by another worker');
    }
  });

  it('a refusal names the bucket and the reason, never the SAS', async () => {
    const { url } = await storage((_, res) => void res.writeHead(403, { 'x-ms-error-code': 'AuthorizationFailure' }).end());
    const { downloaded, bytes } = await downloadBucket3(url);
    expect((downloaded as Error).message).toBe('Downloading the sync state of bucket 3 failed: HTTP 403 (AuthorizationFailure)');
    expect(bytes).toBeNull();
  });

  it('with a proxy named in the environment, goes through the SDK, which takes the proxy', async () => {
    const { url, seen } = await storage(() => 'serve');
    let result: Awaited<ReturnType<typeof downloadBucket3>> | null = null;
    const proxied = await withProxy(async () => (result = await downloadBucket3(url)));
    expect(result!.bytes!.equals(BLOB)).toBe(true);
    expect(proxied).toEqual([expect.stringMatching(/\/state\/export-1\/b3\.tsv\?sig=SECRET$/)]);
    expect(seen[0]!.userAgent).toMatch(/azsdk-js-azure-storage-blob/);
  });
});
