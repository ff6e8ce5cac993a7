// A partition downloaded by the engine thread itself: from Azurite with the grant the main thread
// makes (a read-only SAS), and from a loopback server that fails the ways storage does: a body
// that breaks off is resumed where it stopped, on the same version of the blob; a busy server is
// tried again; a blob that is gone or changed fails the run with a reason that never holds the SAS.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { BlobClient, ContainerClient } from '@azure/storage-blob';
import { afterEach, describe, expect, it } from 'vitest';
import { RunStopped } from '../../shared/engine';
import { downloadPartition } from '../../shared/engine/read/partition-download';
import { EngineThread } from '../../shared/engine/run/engine-thread-client';
import { threadLimits } from '../../shared/engine/run/thread-sizing';
import { ROW_SPILLS } from '../../shared/engine/spill/bucket-files';
import { exportDefinition } from '../helpers/definition';
import { PartitionAborted } from '../../shared/engine/read/column-check';
import { downloadGrant } from '../../shared/snapshot/download-grant';
import { services } from '../../shared/services';
import { useAzurite } from '../helpers/app';

useAzurite();

const BLOB = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `c${i},row ${i}\n`).join(''));
const fast = { backoffMs: 5, idleMs: 300 };

/** Downloads with `grant`, as the engine thread does: every byte pushed, in order. */
async function download(grant: { url: string; headers: Record<string, string> }, options = fast): Promise<Buffer> {
  const pieces: Buffer[] = [];
  await downloadPartition(grant, 'Seg/Seg_1.csv', (bytes) => pieces.push(Buffer.from(bytes)), options);
  return Buffer.concat(pieces);
}

/** The blob's bytes, each once, in order (compared whole: element by element, toEqual takes seconds). */
function expectTheBlob(bytes: Buffer): void {
  expect(bytes.length).toBe(BLOB.length);
  expect(bytes.equals(BLOB)).toBe(true);
}

interface Seen {
  range?: string;
  ifMatch?: string;
  authorization?: string;
}

const servers: http.Server[] = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));

/** A loopback server for BLOB: `answer` decides each request's fate (by its number), and what each asked is kept. */
async function storage(
  answer: (n: number, res: http.ServerResponse, from: number) => 'serve' | void,
): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const n = seen.length;
    seen.push({
      range: req.headers.range,
      ifMatch: req.headers['if-match'] as string | undefined,
      authorization: req.headers.authorization,
    });
    const from = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
    if (answer(n, res, from) !== 'serve') return;
    res.writeHead(from > 0 ? 206 : 200, { etag: '"v1"', 'content-length': BLOB.length - from });
    res.end(BLOB.subarray(from));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ci/Seg_1.csv?sig=SECRET`, seen };
}

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
    const { url, seen } = await storage((n, res) => {
      if (n > 0) return 'serve';
      res.writeHead(200, { etag: '"v1"', 'content-length': BLOB.length });
      res.write(BLOB.subarray(0, 100_000), () => res.destroy()); // cut after 100,000 bytes
    });
    expectTheBlob(await download({ url, headers: {} }));
    expect(seen.map((s) => [s.range, s.ifMatch])).toEqual([
      [undefined, undefined],
      [expect.stringMatching(/^bytes=\d+-$/), '"v1"'],
    ]);
    expect(Number(/\d+/.exec(seen[1]!.range!)![0])).toBeGreaterThan(0);
  });

  it('a server that ignores the range (the whole blob again) still gives each byte once', async () => {
    const { url } = await storage((n, res) => {
      if (n === 0) {
        res.writeHead(200, { etag: '"v1"', 'content-length': BLOB.length });
        return void res.write(BLOB.subarray(0, 50_000), () => res.destroy());
      }
      res.writeHead(200, { etag: '"v1"', 'content-length': BLOB.length });
      res.end(BLOB);
    });
    expectTheBlob(await download({ url, headers: {} }));
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

  it('a busy server (503) is tried again after a backoff; one that stays busy fails the run naming its answer, not the SAS', async () => {
    const busy = (res: http.ServerResponse) => void res.writeHead(503, { 'x-ms-error-code': 'ServerBusy' }).end();
    const twice = await storage((n, res) => (n < 2 ? busy(res) : 'serve'));
    expectTheBlob(await download({ url: twice.url, headers: {} }));
    expect(twice.seen).toHaveLength(3);

    const always = await storage((_, res) => busy(res));
    const error = (await download({ url: always.url, headers: {} }).catch((e: unknown) => e)) as Error;
    expect(error.message).toBe('Downloading partition Seg/Seg_1.csv failed: HTTP 503 (ServerBusy)');
    expect(always.seen).toHaveLength(4);
  });

  it('a refusal (403) fails at once; a blob changed before the resume fails, saying so', async () => {
    const refused = await storage((_, res) => void res.writeHead(403, { 'x-ms-error-code': 'AuthorizationFailure' }).end());
    await expect(download({ url: refused.url, headers: {} })).rejects.toThrow('HTTP 403 (AuthorizationFailure)');
    expect(refused.seen).toHaveLength(1);

    const changed = await storage((n, res) => {
      if (n > 0) return void res.writeHead(412, { 'x-ms-error-code': 'ConditionNotMet' }).end();
      res.writeHead(200, { etag: '"v1"', 'content-length': BLOB.length });
      res.write(BLOB.subarray(0, 100_000), () => res.destroy());
    });
    await expect(download({ url: changed.url, headers: {} })).rejects.toThrow(
      'Partition Seg/Seg_1.csv changed while it was read',
    );
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
  it('asked to stop while the download stalls, stops within a second', async () => {
    // Headers and a first piece, then nothing: the thread waits for bytes that do not come.
    const { url } = await storage((_, res) => {
      res.writeHead(200, { etag: '"v1"', 'content-length': BLOB.length });
      res.write(BLOB.subarray(0, 10_000));
    });
    const tempDir = mkdtempSync(path.join(os.tmpdir(), 'download-stop-'));
    const columns = [{ name: 'CustomerId' }, { name: 'Email' }, { name: 'BrazeUserId' }];
    const thread = new EngineThread(
      {
        def: exportDefinition({
          segments: ['Seg'],
          matching: { profileId: 'CustomerId', email: 'Email', brazeCustomerId: 'BrazeUserId', attributes: {} },
        }),
        bucketCount: 4,
        tempDir,
        done: [],
        early: null,
        definitionFp: 'fp',
        spillKind: ROW_SPILLS[0],
        runId: 'run',
        fullSync: false,
        tableColumns: { Seg: columns },
      },
      threadLimits('reader', BLOB.length),
    );
    let stop = false;
    setTimeout(() => (stop = true), 300);
    const started = Date.now();
    try {
      const reading = thread.partition({
        tables: [
          {
            segment: 'Seg',
            columns,
            partitions: [{ blobName: 'Seg_1.csv', sizeBytes: BLOB.length, delimiter: ',', hasHeader: false }],
          },
        ],
        // Anonymous: the grant is the URL as it is, so the thread asks the stalling server.
        container: new ContainerClient(url.slice(0, url.lastIndexOf('/'))),
        early: null,
        shouldStop: () => stop,
        onProgress: () => undefined,
      });
      await expect(reading).rejects.toBeInstanceOf(RunStopped);
      expect(Date.now() - started).toBeLessThan(1300);
    } finally {
      await thread.close();
      rmSync(tempDir, { recursive: true, force: true });
    }
  });
});

describe('the grant the main thread makes for a partition', () => {
  const token = { getToken: async () => ({ token: 'TOKEN', expiresOnTimestamp: Date.now() + 3_600_000 }) };

  it('by identity: a bearer token and a service version that takes one, over https only', async () => {
    const grant = await downloadGrant(new BlobClient('https://ci.blob.core.windows.net/c/Seg/Seg_1.csv', token));
    expect(grant).toEqual({
      url: 'https://ci.blob.core.windows.net/c/Seg/Seg_1.csv',
      headers: { authorization: 'Bearer TOKEN', 'x-ms-version': expect.stringMatching(/^20\d\d-\d\d-\d\d$/) },
    });
    await expect(downloadGrant(new BlobClient('http://127.0.0.1:1/c/Seg_1.csv', token))).rejects.toThrow(/https/);
  });

  it('the bearer token is sent as the grant says', async () => {
    const { url, seen } = await storage(() => 'serve');
    expectTheBlob(await download({ url, headers: { authorization: 'Bearer TOKEN' } }));
    expect(seen[0]!.authorization).toBe('Bearer TOKEN');
  });

  it('a SAS already in the connection string: the URL as it is', async () => {
    const grant = await downloadGrant(new BlobClient('https://ci.blob.core.windows.net/c/Seg_1.csv?sv=2021-08-06&sig=abc'));
    expect(grant).toEqual({ url: 'https://ci.blob.core.windows.net/c/Seg_1.csv?sv=2021-08-06&sig=abc', headers: {} });
  });
});
