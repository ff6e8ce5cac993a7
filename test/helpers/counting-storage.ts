// A Blob client of the test's Azurite through a loopback server that forwards each request and
// notes it: what a run waits for, one round trip each, counted on real HTTP.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll } from 'vitest';

export interface Traffic {
  /** Each request, as "HEAD blob", "GET container"…: what a run waits for, one round trip each. */
  requests: string[];
  /** The most requests under way at once. */
  mostAtOnce: number;
  /** Bytes of the answers' bodies passed on. */
  bodyBytes: number;
}

/**
 * A client of the same Azurite through a loopback server that forwards each request and notes it.
 * A HEAD is held until `heldUntil` of them are under way (or 300 ms have passed), so requests sent
 * together are seen together, and requests sent one after another are not.
 */
async function countingClient(
  connectionString: string,
  heldUntil: number,
  servers: http.Server[],
): Promise<{ blobs: BlobServiceClient; traffic: Traffic }> {
  const traffic: Traffic = { requests: [], mostAtOnce: 0, bodyBytes: 0 };
  const blobUrl = new URL(/BlobEndpoint=([^;]+)/.exec(connectionString)![1]!);
  let underWay = 0;
  const held: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const depth = new URL(req.url!, 'http://x').pathname.split('/').length;
    traffic.requests.push(`${req.method} ${depth > 3 ? 'blob' : 'container'}`);
    traffic.mostAtOnce = Math.max(traffic.mostAtOnce, ++underWay);
    res.on('close', () => underWay--);
    const forward = () => {
      const options = { host: blobUrl.hostname, port: blobUrl.port, method: req.method, path: req.url, headers: req.headers };
      const upstream = http.request(options, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.on('data', (chunk: Buffer) => (traffic.bodyBytes += chunk.length));
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    if (req.method !== 'HEAD') return forward();
    held.push(forward);
    const release = () => held.splice(0).forEach((go) => go());
    if (held.length >= heldUntil) release();
    else setTimeout(release, 300);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const connection = connectionString.replace(/BlobEndpoint=http:\/\/[^/]+/, `BlobEndpoint=http://127.0.0.1:${port}`);
  return { blobs: BlobServiceClient.fromConnectionString(connection), traffic };
}

/** `(heldUntil?) => a counting client`, its servers closed after the file's tests. */
export function useCountingStorage(connectionString: () => string) {
  const servers: http.Server[] = [];
  afterAll(async () => {
    for (const s of servers) s.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });
  return (heldUntil = 1) => countingClient(connectionString(), heldUntil, servers);
}
