// Braze's export URL is data from outside: only https (http to an allowed loopback host), every
// redirect checked, bytes capped, a stalled body timed out, the network told apart from "not ready",
// and the files' lines and unpacked size bounded.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { urlRefusal } from '../../shared/verify/download-url';
import { downloadWhenReady, readUserLines } from '../../shared/verify/export-files';

let server: Server;
let base: string;
const dir = mkdtempSync(path.join(os.tmpdir(), 'verify-download-'));
const LOCAL = ['127.0.0.1:*'];

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/files') return res.end('{"external_id":"u1"}\n');
    if (req.url === '/away') return res.writeHead(302, { location: 'http://203.0.113.9/files' }).end();
    if (req.url === '/hop') return res.writeHead(302, { location: '/files' }).end();
    if (req.url === '/big') return res.end(Buffer.alloc(5000, 'x'));
    if (req.url === '/chunked') {
      res.write(Buffer.alloc(3000, 'x'));
      return setTimeout(() => res.end(Buffer.alloc(3000, 'x')), 10);
    }
    if (req.url === '/stall') return res.write('{"a":1}\n'); // never ends
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

const w = { pollMs: 10, until: Date.now() + 60_000, shouldStop: () => false };
const get = (p: string, maxBytes = 1_000_000, idleMs?: number) =>
  downloadWhenReady(
    `${base}${p}`,
    path.join(dir, 'f'),
    { ...w, until: Date.now() + 300 },
    { extraHosts: LOCAL, maxBytes, idleMs },
  );

describe("Braze's export URL", () => {
  it('is fetched over https only; http only to a loopback host LOCAL_EXTRA_BRAZE_HOSTS allows', () => {
    expect(urlRefusal('https://s3.amazonaws.com/x?sig=1')).toBeNull();
    expect(urlRefusal('http://s3.amazonaws.com/x')).toMatch(/not https/);
    expect(urlRefusal('http://127.0.0.1:4010/x')).toMatch(/not https/);
    expect(urlRefusal('http://127.0.0.1:4010/x', LOCAL)).toBeNull();
    expect(urlRefusal('http://10.0.0.1:80/x', ['10.0.0.1:*'])).toMatch(/loopback/);
    expect(urlRefusal('file:///etc/passwd')).toMatch(/file:/);
    expect(urlRefusal('https://user:pw@example.com/')).toMatch(/credentials/);
  });

  it('checks every redirect hop', async () => {
    expect(await get('/hop')).toMatchObject({ files: [path.join(dir, 'f')] });
    await expect(get('/away')).rejects.toThrow(/not https.*after a redirect/);
  });

  it('caps the bytes, by Content-Length and by counting', async () => {
    await expect(get('/big', 1000)).rejects.toThrow(/5000 bytes, more than the 1000/);
    await expect(get('/chunked', 4000)).rejects.toThrow(/larger than the 4000 bytes/);
  });

  it('times out a stalled body', async () => {
    await expect(get('/stall', 1000, 100)).rejects.toThrow(/stalled/);
  });

  it('says when the network, not Braze, is the trouble', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    const at = `http://127.0.0.1:${port}/files`;
    await expect(
      downloadWhenReady(at, path.join(dir, 'g'), { ...w, until: Date.now() + 50 }, { extraHosts: LOCAL, maxBytes: 1000 }),
    ).rejects.toThrow(/could not be reached \(ECONNREFUSED\)/);
  });

  it('reads lines of bounded length', async () => {
    const file = path.join(dir, 'lines');
    writeFileSync(file, `{"a":1}\r\n${'x'.repeat(5 * 1024 * 1024)}\n`);
    const seen: string[] = [];
    await expect(readUserLines(file, (l) => seen.push(l))).rejects.toThrow(/longer than/);
    expect(seen).toEqual(['{"a":1}']);
  });
});
