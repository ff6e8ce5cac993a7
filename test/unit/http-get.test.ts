// The GET a partition is downloaded with (shared/store/http-get.ts), against loopback
// servers: plain http and https with a test certificate, answers framed by length, chunked or by
// the connection's end, heads that come a byte at a time, answers that are not HTTP, and bodies
// that come before they are read. What it hands over is compared byte for byte.
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HttpGet } from '../../shared/store/http-get';
import { LOCALHOST_CERT, LOCALHOST_KEY } from '../../scripts/localhost-tls';

const BODY = Buffer.from(Array.from({ length: 60_000 }, (_, i) => `row${i},"a value\nwith a line feed",${i * 7}\n`).join(''));

const servers: net.Server[] = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));

async function listening<S extends net.Server>(server: S, host = '127.0.0.1'): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, host, r));
  return (server.address() as AddressInfo).port;
}

/** A server that writes `answer` (pieces written apart, a few ms between them) whatever it is asked. */
async function rawServer(answer: (Buffer | string)[], asked: string[] = []): Promise<string> {
  const port = await listening(
    net.createServer((socket) => {
      socket.once('data', async (request) => {
        asked.push(request.toString('latin1'));
        for (const piece of answer) {
          socket.write(piece);
          await new Promise((r) => setTimeout(r, 2));
        }
        socket.end();
      });
      socket.on('error', () => undefined);
    }),
  );
  return `http://127.0.0.1:${port}/c/Seg_1.csv?sig=SECRET`;
}

interface Got {
  status: number | null;
  failure: string;
  body: Buffer;
  /** How the body ended: 'end', or why it broke off. */
  ended: string;
}

/** One GET, its body read after `waitMs` (copied piece by piece: the pieces are the reused buffer's). */
async function get(
  url: string,
  headers: Record<string, string> = {},
  options: { waitMs?: number; ca?: string; idleMs?: number } = {},
): Promise<Got> {
  const request = new HttpGet(url, headers, options.idleMs ?? 2000, options.ca ? { ca: options.ca } : {});
  const answer = await request.answer;
  if (!answer) return { status: null, failure: request.failure, body: Buffer.alloc(0), ended: 'no answer' };
  if (options.waitMs) await new Promise((r) => setTimeout(r, options.waitMs));
  const pieces: Buffer[] = [];
  const ended = await new Promise<string>((resolve) =>
    request.read({ bytes: (b) => void pieces.push(Buffer.from(b)), end: () => resolve('end'), broke: resolve }),
  );
  return { status: answer.status, failure: request.failure, body: Buffer.concat(pieces), ended };
}

describe('a GET read into one reused buffer', () => {
  it('hands over a body framed by its length, each byte once and in order, and sends the headers it is given', async () => {
    let seen: http.IncomingHttpHeaders = {};
    const port = await listening(
      http.createServer((req, res) => {
        seen = req.headers;
        res.writeHead(200, { 'content-length': BODY.length, etag: '"0x8D"' });
        res.end(BODY);
      }),
    );
    const request = new HttpGet(
      `http://127.0.0.1:${port}/c/Seg_1.csv`,
      { 'x-ms-version': '2021-08-06', range: 'bytes=0-' },
      2000,
    );
    const answer = (await request.answer)!;
    expect([answer.status, answer.header('etag'), answer.header('content-length')]).toEqual([200, '"0x8D"', String(BODY.length)]);
    const pieces: Buffer[] = [];
    await new Promise<void>((resolve, reject) =>
      request.read({ bytes: (b) => void pieces.push(Buffer.from(b)), end: resolve, broke: (why) => reject(new Error(why)) }),
    );
    expect(Buffer.concat(pieces).equals(BODY)).toBe(true);
    expect(pieces.length).toBeGreaterThan(1);
    expect(seen).toMatchObject({ host: `127.0.0.1:${port}`, 'x-ms-version': '2021-08-06', range: 'bytes=0-' });
  });

  it('reads a chunked body (sizes with extensions, trailers after) and a head that comes a byte at a time', async () => {
    const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: "v1"\r\n\r\n';
    const chunked = [
      ...head.split(''),
      '5;name=value\r\nhel',
      'lo\r\n',
      '0',
      'f\r\n, and more text\r\n0\r\nX-Trailer: t\r\n\r\n',
    ];
    const got = await get(await rawServer(chunked));
    expect(got).toMatchObject({ status: 200, ended: 'end' });
    expect(got.body.toString()).toBe('hello, and more text');
  });

  it('reads to the connection’s end where no length is given, after an interim 100 answer', async () => {
    const got = await get(
      await rawServer(['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n', 'ETag: "v1"\r\n\r\nall of ', 'it']),
    );
    expect(got).toMatchObject({ status: 200, ended: 'end' });
    expect(got.body.toString()).toBe('all of it');
  });

  it('a body cut short of its length, or of its chunks, breaks off, saying so', async () => {
    const short = await get(await rawServer(['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n', 'only this']));
    expect(short).toMatchObject({ ended: 'the body broke off', body: Buffer.from('only this') });
    const chunks = await get(await rawServer(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', '4\r\nabcd\r\n']));
    expect(chunks).toMatchObject({ ended: 'the body broke off', body: Buffer.from('abcd') });
    const framing = await get(
      await rawServer(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'zz\r\nabcd\r\n0\r\n\r\n']),
    );
    expect(framing.ended).toBe('the chunked body is not HTTP');
    const endless = await get(await rawServer(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', '0'.repeat(2000)]));
    expect(endless.ended).toBe('the chunked body is not HTTP');
  });

  it('an answer that is not HTTP, or closes before a head, fails before an answer', async () => {
    expect(await get(await rawServer(['SSH-2.0-OpenSSH_9.2\r\n\r\n']))).toMatchObject({
      status: null,
      failure: 'the answer is not HTTP',
    });
    const coding = await get(await rawServer(['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n']));
    expect(coding).toMatchObject({ status: null, failure: 'the answer is not HTTP' });
    const endlessHead = await get(await rawServer(['HTTP/1.1 200 OK\r\nX-Long: ', 'a'.repeat(70_000)]));
    expect(endlessHead).toMatchObject({ status: null, failure: 'the answer is not HTTP' });
    expect(await get(await rawServer(['HTTP/1.1 200']))).toMatchObject({ status: null, failure: 'ECONNRESET' });
  });

  it('refuses heads a body could be cut short or run on by: a repeated length, a folded line, endless interim answers', async () => {
    const notHttp = { status: null, failure: 'the answer is not HTTP' };
    const twoLengths = ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 11\r\n\r\nhello world'];
    expect(await get(await rawServer(twoLengths))).toMatchObject(notHttp);
    const folded = ['HTTP/1.1 200 OK\r\nX-A: a\r\n Content-Length: 5\r\n\r\nhello world'];
    expect(await get(await rawServer(folded))).toMatchObject(notHttp);
    expect(await get(await rawServer(['HTTP/1.1 100 Continue\r\n\r\n'.repeat(4000)]))).toMatchObject(notHttp);
    const elevenInterim = ['HTTP/1.1 100 Continue\r\n\r\n'.repeat(11), 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'];
    expect(await get(await rawServer(elevenInterim))).toMatchObject(notHttp);
    const sameLengthTwice = [
      'HTTP/1.1 100 Continue\r\n\r\n'.repeat(3),
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello',
    ];
    expect(await get(await rawServer(sameLengthTwice))).toMatchObject({ status: 200, ended: 'end', body: Buffer.from('hello') });
  });

  it('sends header values byte for byte, as they were read (an ETag back in If-Match)', async () => {
    const asked: string[] = [];
    await get(await rawServer(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'], asked), { 'if-match': '"caf\u00e9"' });
    expect(Buffer.from(asked[0]!, 'latin1').includes(Buffer.from('if-match: "caf\xe9"\r\n', 'latin1'))).toBe(true);
  });

  it('a header that would split the request is refused before anything is sent', async () => {
    const asked: string[] = [];
    const url = await rawServer(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'], asked);
    const got = await get(url, { 'if-match': '"v1"\r\nx-injected: 1' });
    expect(got).toMatchObject({ status: null, failure: 'ERR_INVALID_CHAR' });
    expect(await get(url)).toMatchObject({ status: 200, ended: 'end' }); // an empty body ends at once
    expect(asked).toHaveLength(1);
  });

  it('body bytes that come before they are read wait for the reader, however long, in order, with the rest after them', async () => {
    const port = await listening(
      http.createServer((_, res) => {
        res.writeHead(200, { 'content-length': BODY.length });
        res.end(BODY);
      }),
    );
    // Three times the idle time (200 ms): a request sent ahead waits for the partition before it, not idle.
    const got = await get(`http://127.0.0.1:${port}/x`, {}, { waitMs: 600, idleMs: 200 });
    expect(got.ended).toBe('end');
    expect(got.body.equals(BODY)).toBe(true);
  });

  it('a reader that asks to wait is handed the same bytes again after it, then the rest, each byte once (http, chunked, https)', async () => {
    /** Reads with a reader that declines every third piece it is handed, for a few ms. */
    const readWaiting = async (url: string, ca?: string) => {
      const request = new HttpGet(url, {}, 2000, ca ? { ca } : {}, 64 * 1024);
      expect((await request.answer)!.status).toBe(200);
      const pieces: Buffer[] = [];
      let calls = 0;
      let waits = 0;
      const ended = await new Promise<string>((resolve) =>
        request.read({
          bytes: (b) => {
            if (++calls % 3 === 0) {
              waits++;
              return new Promise((r) => setTimeout(r, 3));
            }
            pieces.push(Buffer.from(b));
          },
          end: () => resolve('end'),
          broke: resolve,
        }),
      );
      expect(ended).toBe('end');
      expect(waits).toBeGreaterThan(5);
      return Buffer.concat(pieces);
    };
    const plain = await listening(
      http.createServer((req, res) => {
        // One answer framed by its length, the other chunked (no length given).
        res.writeHead(200, req.url === '/chunked' ? {} : { 'content-length': BODY.length });
        for (let at = 0; at < BODY.length; at += 100_000) res.write(BODY.subarray(at, at + 100_000));
        res.end();
      }),
    );
    expect((await readWaiting(`http://127.0.0.1:${plain}/length`)).equals(BODY)).toBe(true);
    expect((await readWaiting(`http://127.0.0.1:${plain}/chunked`)).equals(BODY)).toBe(true);
    const secure = await listening(
      https.createServer({ cert: LOCALHOST_CERT, key: LOCALHOST_KEY }, (_, res) => {
        res.writeHead(200, { 'content-length': BODY.length });
        res.end(BODY);
      }),
      'localhost',
    );
    expect((await readWaiting(`https://localhost:${secure}/x`, LOCALHOST_CERT)).equals(BODY)).toBe(true);
  });

  it('over https: reads the body with a certificate that names the host, refuses one that does not or is not trusted', async () => {
    const port = await listening(
      https.createServer({ cert: LOCALHOST_CERT, key: LOCALHOST_KEY }, (_, res) => {
        res.writeHead(200, { 'content-length': BODY.length });
        res.end(BODY);
      }),
      'localhost',
    );
    for (const waitMs of [0, 150]) {
      const got = await get(`https://localhost:${port}/x`, {}, { ca: LOCALHOST_CERT, waitMs });
      expect(got.ended).toBe('end');
      expect(got.body.equals(BODY)).toBe(true);
    }
    expect(await get(`https://localhost:${port}/x`)).toMatchObject({ status: null, failure: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    const address = (servers.at(-1)!.address() as AddressInfo).address;
    const byAddress = await get(
      `https://${address.includes(':') ? `[${address}]` : address}:${port}/x`,
      {},
      { ca: LOCALHOST_CERT },
    );
    expect(byAddress).toMatchObject({ status: null, failure: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it("over https: a request resumes the TLS session of one before it with the same options, never another's", async () => {
    const resumed: boolean[] = [];
    const server = https.createServer({ cert: LOCALHOST_CERT, key: LOCALHOST_KEY }, (_, res) => {
      res.writeHead(200, { 'content-length': BODY.length });
      res.end(BODY);
    });
    server.on('secureConnection', (socket) => socket.once('data', () => resumed.push(socket.isSessionReused())));
    const port = await listening(server, 'localhost');
    const url = `https://localhost:${port}/x`;
    /** A GET read to its end with these TLS options. */
    const read = async (tlsOptions: { ca: string }) => {
      const request = new HttpGet(url, {}, 2000, tlsOptions);
      expect((await request.answer)!.status).toBe(200);
      await new Promise<void>((resolve) => request.read({ bytes: () => undefined, end: resolve, broke: () => resolve() }));
    };
    const options = { ca: LOCALHOST_CERT };
    const contexts = vi.spyOn(tls, 'createSecureContext');
    const lookups = vi.spyOn(dns, 'lookup');
    try {
      await read(options);
      await read(options);
      await read({ ca: LOCALHOST_CERT }); // the same CA, but options of its own: verified afresh
      expect(resumed).toEqual([false, true, false]);
      // One TLS context for each options object, not one a GET; the host looked up once at most for
      // all three (the GETs before them in this file may have looked it up already).
      expect(contexts).toHaveBeenCalledTimes(2);
      expect(lookups.mock.calls.filter(([name]) => name === 'localhost').length).toBeLessThanOrEqual(1);
      // The context kept for these options still checks each server's name: by its address, refused.
      const address = (server.address() as AddressInfo).address;
      const byAddress = new HttpGet(`https://${address.includes(':') ? `[${address}]` : address}:${port}/x`, {}, 2000, options);
      expect(await byAddress.answer).toBeNull();
      expect(byAddress.failure).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    } finally {
      contexts.mockRestore();
      lookups.mockRestore();
    }
  });
});
