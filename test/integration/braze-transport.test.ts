// The transport the Braze client POSTs with (shared/braze/transport.ts), against loopback servers:
// kept-alive connections (never more than asked, the requests beyond waiting), answers framed by
// length, chunks or the connection's end, connections the server closes or stops answering on,
// answers that are not HTTP, a header that would split the request, and https with a test
// certificate. What the server receives and what the client hands back are compared exactly.
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConnectionsNeeded } from '../../shared/braze/connections-needed';
import { Transport, type TransportResponse } from '../../shared/braze/transport';
import { LOCALHOST_CERT, LOCALHOST_KEY } from '../../scripts/localhost-tls';

const KEY = 'api-key-SECRET-1234';
const HEADERS = { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' };

const servers: net.Server[] = [];
const transports: Transport[] = [];
afterEach(() => {
  transports.splice(0).forEach((t) => t.close());
  servers.splice(0).forEach((s) => {
    (s as http.Server).closeAllConnections?.();
    s.close();
  });
});

async function listening<S extends net.Server>(server: S): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

function transport(url: string, maxSockets: number, ca?: string): Transport {
  const t = new Transport(url, maxSockets, ca ? { tls: { ca } } : {});
  transports.push(t);
  return t;
}

/** What a server saw: each request's body and headers, and each connection opened. */
interface Seen {
  bodies: string[];
  headers: http.IncomingHttpHeaders[];
  connections: net.Socket[];
  /** Requests being answered at once, at most. */
  mostAtOnce: number;
}

/** A node:http server answering each request with `answer`, after `delayMs`. */
async function server(
  answer: (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void,
  delayMs = 0,
  secure = false,
): Promise<{ url: string; seen: Seen }> {
  const seen: Seen = { bodies: [], headers: [], connections: [], mostAtOnce: 0 };
  let atOnce = 0;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.bodies.push(body);
      seen.headers.push(req.headers);
      seen.mostAtOnce = Math.max(seen.mostAtOnce, ++atOnce);
      res.on('finish', () => atOnce--);
      setTimeout(() => answer(req, body, res), delayMs);
    });
  };
  const s = secure ? https.createServer({ cert: LOCALHOST_CERT, key: LOCALHOST_KEY }, handler) : http.createServer(handler);
  s.on(secure ? 'secureConnection' : 'connection', (socket: net.Socket) => seen.connections.push(socket));
  const port = await listening(s);
  return { url: `${secure ? 'https://localhost' : 'http://127.0.0.1'}:${port}/users/track?q=SECRET`, seen };
}

/**
 * A server that answers each whole request (head and Content-Length body), whatever connection it
 * comes on, with the next of `answers`, its pieces written apart ('END' ends the connection,
 * 'RESET' resets it); over TLS when `secure` (each piece a TLS record of its own).
 */
async function rawServer(answers: (string | Buffer)[][], secure = false): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  let next = 0;
  const create = (listener: (socket: net.Socket) => void) =>
    secure ? tls.createServer({ cert: LOCALHOST_CERT, key: LOCALHOST_KEY }, listener) : net.createServer(listener);
  const port = await listening(
    create((socket) => {
      connections++;
      let pending = '';
      socket.on('data', async (bytes: Buffer) => {
        pending += bytes.toString('latin1');
        const headEnd = pending.indexOf('\r\n\r\n');
        const length = Number(/content-length: (\d+)/i.exec(pending)?.[1] ?? 0);
        if (headEnd < 0 || pending.length < headEnd + 4 + length) return;
        pending = pending.slice(headEnd + 4 + length);
        for (const piece of answers[next++] ?? []) {
          if (piece === 'END') return socket.end();
          if (piece === 'RESET') return socket.resetAndDestroy();
          socket.write(piece);
          await new Promise((r) => setTimeout(r, 5));
        }
      });
      socket.on('error', () => undefined);
    }),
  );
  return { url: `${secure ? 'https://localhost' : 'http://127.0.0.1'}:${port}/users/track`, connections: () => connections };
}

/** Resolves once `check` holds (polled), or fails the test after 2 s. */
async function until(check: () => boolean): Promise<void> {
  for (const at = Date.now(); !check(); await new Promise((r) => setTimeout(r, 5)))
    if (Date.now() - at > 2000) throw new Error('waited 2 s in vain');
}

const post = (t: Transport, body: string, timeoutMs = 2000) => t.post(Buffer.from(body), HEADERS, timeoutMs);
const failureOf = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: NodeJS.ErrnoException) => ({ code: e.code, message: e.message }),
  );

describe('the Braze transport: POSTs on kept-alive connections of its own', () => {
  it('sends each body and header as given, hands back status, headers (any case) and UTF-8 text, over at most maxSockets connections', async () => {
    const { url, seen } = await server((_req, body, res) => {
      res.setHeader('X-RateLimit-Remaining', '42');
      res.end(JSON.stringify({ message: 'success', echo: body, note: 'Zoë 李小龍' }));
    });
    const t = transport(url, 2);
    const bodies = Array.from({ length: 20 }, (_, i) =>
      JSON.stringify({ attributes: [{ external_id: `u${i}`, name: 'Ἀθηνᾶ' }] }),
    );
    const answers = await Promise.all(bodies.map((b) => post(t, b)));
    expect(answers.map((a) => JSON.parse(a.text).echo)).toEqual(bodies);
    expect(answers.every((a) => a.status === 200 && JSON.parse(a.text).note === 'Zoë 李小龍')).toBe(true);
    expect(answers.every((a) => a.header('x-ratelimit-remaining') === '42' && a.header('X-RateLimit-Remaining') === '42')).toBe(
      true,
    );
    expect(seen.bodies.sort()).toEqual([...bodies].sort());
    expect(seen.headers[0]).toMatchObject({
      authorization: `Bearer ${KEY}`,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(bodies[0]!)),
      host: new URL(url).host,
    });
    // 20 requests, two connections: each kept for the next request.
    expect(seen.connections).toHaveLength(2);
    const more = await post(t, '{"again":true}');
    expect(JSON.parse(more.text).echo).toBe('{"again":true}');
    expect(seen.connections).toHaveLength(2);
  });

  it('keeps no more requests under way than it has connections; the rest wait their turn, in order', async () => {
    // The server answers only once three requests are in: a fourth under way would show, and never be answered.
    const held: http.ServerResponse[] = [];
    const bodies: string[] = [];
    const { url, seen } = await server((_req, body, res) => {
      bodies.push(body);
      held.push(res);
      if (held.length === 3) held.splice(0).forEach((r) => r.end('ok'));
    });
    const t = transport(url, 3);
    await Promise.all(Array.from({ length: 12 }, (_, i) => post(t, `b${i}`)));
    expect(seen.mostAtOnce).toBe(3);
    expect(seen.connections).toHaveLength(3);
    // Each wave of three is the next three asked for.
    const waves = [0, 3, 6, 9].map((i) => bodies.slice(i, i + 3).sort());
    expect(waves).toEqual([0, 3, 6, 9].map((i) => [`b${i}`, `b${i + 1}`, `b${i + 2}`].sort()));
  });

  it('opens no more connections than the pace needs once a round trip is known; a burst waits for them', async () => {
    const { url, seen } = await server((_req, _body, res) => res.end('ok'), 40);
    // 10 requests a second, answered in ~40 ms: one connection needed (2.5 times over), and 8 spare.
    const capped = new Transport(url, 64, { needed: new ConnectionsNeeded(10) });
    transports.push(capped);
    await post(capped, 'first');
    const bodies = Array.from({ length: 40 }, (_, i) => `b${i}`);
    const answers = await Promise.all(bodies.map((b) => post(capped, b)));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(seen.bodies.slice(1).sort()).toEqual([...bodies].sort());
    // At most 2.5 × 10 × 0.5 + 8 = 21 in all, even if the loaded machine answered in 500 ms; uncapped the burst opens 40.
    expect(seen.connections.length).toBeLessThanOrEqual(21);

    const { url: url2, seen: seen2 } = await server((_req, _body, res) => res.end('ok'), 40);
    const uncapped = transport(url2, 64);
    await post(uncapped, 'first');
    await Promise.all(bodies.map((b) => post(uncapped, b)));
    expect(seen2.connections).toHaveLength(40);
  });

  it('once more connections are allowed, those waiting go on them before a newer request', async () => {
    const held: http.ServerResponse[] = [];
    const { url, seen } = await server((_req, _body, res) => held.push(res));
    const limit = { count: 1, roundTrip: () => undefined };
    const t = new Transport(url, 8, { needed: limit });
    transports.push(t);
    const answers = ['a', 'b', 'c'].map((b) => post(t, b));
    await until(() => seen.bodies.length === 1);
    limit.count = 3; // a longer round trip seen meanwhile
    answers.push(post(t, 'd'));
    await until(() => seen.bodies.length === 3);
    expect(seen.bodies).toEqual(['a', 'b', 'c']); // d waits its turn
    for (let i = 0; i < 4; i++) {
      await until(() => held.length > 0);
      held.shift()!.end('ok');
    }
    expect((await Promise.all(answers)).map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(seen.bodies).toEqual(['a', 'b', 'c', 'd']);
    expect(seen.connections).toHaveLength(3);
  });

  it('closes the connections beyond what the pace needs once a second unused, the longest unused first', async () => {
    const held: { body: string; res: http.ServerResponse }[] = [];
    const { url, seen } = await server((_req, body, res) => held.push({ body, res }));
    const limit = { count: Infinity, roundTrip: () => undefined };
    const t = new Transport(url, 8, { needed: limit });
    transports.push(t);
    const asked = new Map<string, Promise<unknown>>();
    const ask = (...bodies: string[]) => bodies.forEach((b) => asked.set(b, post(t, b)));
    /** Answers the n requests held, one at a time, each read before the next: the server's sockets in that order. */
    const answerHeld = async (n: number) => {
      await until(() => held.length === n);
      const order = held.map((h) => h.res.socket!);
      for (const { body, res } of held.splice(0)) {
        res.end('ok');
        await asked.get(body);
      }
      return order;
    };
    const open = () => seen.connections.filter((s) => !s.destroyed).length;
    // A burst before any round trip is known opens a connection each.
    ask('a', 'b', 'c', 'd', 'e', 'f');
    const unused = await answerHeld(6);
    limit.count = 2; // the round trip known meanwhile: two are enough
    // Unused for less than a second, none is closed yet: the need may swing back.
    ask('g');
    await answerHeld(1);
    await new Promise((r) => setTimeout(r, 100)); // a close would reach the server meanwhile
    expect(open()).toBe(6);
    await new Promise((r) => setTimeout(r, 1100));
    // 'h' goes on the connection used last; its answer closes the four unused longest.
    ask('h');
    await answerHeld(1);
    await until(() => open() === 2);
    expect(unused.map((s) => s.destroyed)).toEqual([true, true, true, true, false, false]);
    ask('i', 'j', 'k');
    await answerHeld(2);
    await answerHeld(1);
    expect(seen.connections).toHaveLength(6);
    expect(open()).toBe(2);
  });

  it('reads chunked answers (extensions, trailers, pieces apart) and keeps the connection; an answer framed by its end is not kept', async () => {
    const chunked = [
      'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-Id: 7\r\n\r\n',
      '5;ext=1\r\nhello\r\n',
      Buffer.from('7\r\n wörld\r\n', 'utf8'),
      '0\r\nX-Trailer: t\r\n',
      '\r\n',
    ];
    const byEnd = ['HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"by":', '"end"}', 'END'];
    const plain = ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'];
    const { url, connections } = await rawServer([chunked, plain, byEnd, plain]);
    const t = transport(url, 1);
    const first = await post(t, '{}');
    expect([first.status, first.text, first.header('x-id')]).toEqual([201, 'hello wörld', '7']);
    expect((await post(t, '{}')).text).toBe('ok');
    expect(connections()).toBe(1);
    expect((await post(t, '{}')).text).toBe('{"by":"end"}');
    expect((await post(t, '{}')).text).toBe('ok');
    expect(connections()).toBe(2);
  });

  it.each([
    ['', false],
    [' over https', true],
  ])(
    'reads answers that come in pieces on two connections at once each whole%s (their reads share one buffer)',
    async (_, secure) => {
      const texts = ['the first answer, in three pieces', 'the second answer: three pieces too'];
      const inPieces = (text: string) => [
        `HTTP/1.1 200 OK\r\nContent-Length: ${text.length}\r\n\r\n`,
        text.slice(0, 9),
        text.slice(9, 20),
        text.slice(20),
      ];
      const { url, connections } = await rawServer(texts.map(inPieces), secure);
      const t = transport(url, 2, secure ? LOCALHOST_CERT : undefined);
      const answers = await Promise.all([post(t, '{"n":1}'), post(t, '{"n":2}')]);
      expect(answers.map((a) => a.text).sort()).toEqual(texts);
      expect(connections()).toBe(2);
    },
  );

  it('an answer saying Connection: close, or HTTP/1.0, is not kept; the next request opens a new connection', async () => {
    const { url, connections } = await rawServer([
      ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na'],
      ['HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc'],
    ]);
    const t = transport(url, 1);
    const texts = [(await post(t, '1')).text, (await post(t, '2')).text, (await post(t, '3')).text];
    expect(texts).toEqual(['a', 'b', 'c']);
    expect(connections()).toBe(3);
  });

  it('a kept connection the server closes meanwhile is not used again: the next request goes on a new one', async () => {
    const { url, seen } = await server((_req, body, res) => res.end(body));
    const t = transport(url, 1);
    expect((await post(t, 'one')).text).toBe('one');
    const closed = new Promise((r) => seen.connections[0]!.on('close', r));
    seen.connections[0]!.destroy();
    await closed;
    await new Promise((r) => setTimeout(r, 100)); // the client hears the connection end
    expect((await post(t, 'two')).text).toBe('two');
    expect(seen.connections).toHaveLength(2);
  });

  it('closes a connection left unused for as long as the server keeps one (Keep-Alive: timeout)', async () => {
    const { url, seen } = await server((_req, body, res) => {
      res.setHeader('Keep-Alive', 'timeout=1');
      res.end(body);
    });
    const t = transport(url, 1);
    await post(t, 'x');
    const closed = new Promise<void>((r) => seen.connections[0]!.on('close', () => r()));
    const at = Date.now();
    await closed;
    expect(Date.now() - at).toBeLessThan(900); // before the server's own second
    expect((await post(t, 'y')).text).toBe('y');
  });

  it('a server that stops answering fails the request as timed out (ETIMEDOUT); the next request gets a fresh connection', async () => {
    let answered = 0;
    const { url, seen } = await server((_req, body, res) => {
      if (answered++ > 0) res.end(body); // the first is never answered
    });
    const t = transport(url, 1);
    const at = Date.now();
    expect(await failureOf(post(t, 'slow', 200))).toEqual({ code: 'ETIMEDOUT', message: 'timed out' });
    expect(Date.now() - at).toBeGreaterThanOrEqual(190);
    expect((await post(t, 'fine')).text).toBe('fine');
    expect(seen.connections).toHaveLength(2);
  });

  it('an answer cut off, reset, or not HTTP fails the request with a code, and never names the URL or the key', async () => {
    const { url } = await rawServer([
      ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 'END'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 'RESET'],
      ['SMTP ready\r\n\r\n'],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ]);
    const t = transport(`${url}?sig=SECRET`, 1);
    const failures = [];
    for (let i = 0; i < 4; i++) failures.push(await failureOf(post(t, '{}')));
    expect(failures.map((f) => f?.code)).toEqual([
      'ECONNRESET',
      'ECONNRESET',
      'the answer is not HTTP',
      'the answer is not HTTP',
    ]);
    for (const f of failures) expect(f!.message).not.toMatch(/SECRET|127\.0\.0\.1|users\/track/);
    const refused = await failureOf(transport('http://127.0.0.1:1/users/track', 1).post(Buffer.from('{}'), HEADERS, 1000));
    expect(refused?.code).toBe('ECONNREFUSED');
    expect(refused?.message).not.toContain(KEY);
  });

  it('a header that would split the request is refused before anything is sent, naming the header, not its value', async () => {
    const { url, seen } = await server((_req, body, res) => res.end(body));
    const t = transport(url, 1);
    const refused = await failureOf(t.post(Buffer.from('{}'), { Authorization: `Bearer ${KEY}\r\nX-Evil: 1` }, 1000));
    expect(refused?.code).toBe('ERR_INVALID_CHAR');
    expect(refused?.message).not.toContain(KEY);
    // Nothing of it reached the server: the next request is the first it sees, on the first connection.
    expect((await post(t, 'next')).text).toBe('next');
    expect(seen.bodies).toEqual(['next']);
    expect(seen.headers[0]).not.toHaveProperty('x-evil');
    expect(seen.connections).toHaveLength(1);
  });

  it('over https: answers with a certificate that names the host and is trusted; refuses one that is not trusted', async () => {
    const { url, seen } = await server((_req, body, res) => res.end(`secure ${body}`), 0, true);
    const t = transport(url, 2, LOCALHOST_CERT);
    const answers: TransportResponse[] = await Promise.all(['a', 'b', 'c', 'd'].map((b) => post(t, b)));
    expect(answers.map((a) => a.text).sort()).toEqual(['secure a', 'secure b', 'secure c', 'secure d']);
    expect(seen.connections).toHaveLength(2);
    // A connection made later resumes the TLS session Braze gave, instead of a full handshake.
    const closed = Promise.all(seen.connections.map((c) => new Promise((r) => c.on('close', r))));
    seen.connections.forEach((c) => c.destroy());
    await closed;
    await new Promise((r) => setTimeout(r, 100)); // the client hears the connections end
    expect((await post(t, 'e')).text).toBe('secure e');
    expect(seen.connections).toHaveLength(3);
    expect((seen.connections[2] as import('node:tls').TLSSocket).isSessionReused()).toBe(true);
    const untrusted = await failureOf(transport(url, 1).post(Buffer.from('{}'), HEADERS, 1000));
    expect(untrusted?.code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
  });

  it("over https, a burst of connections shares one TLS context and one lookup of Braze's name", async () => {
    const { url, seen } = await server((_req, body, res) => setTimeout(() => res.end(`secure ${body}`), 20), 0, true);
    const contexts = vi.spyOn(tls, 'createSecureContext');
    const lookups = vi.spyOn(dns, 'lookup');
    try {
      const t = transport(url, 8, LOCALHOST_CERT);
      const bodies = Array.from({ length: 8 }, (_, i) => `b${i}`);
      const answers = await Promise.all(bodies.map((b) => post(t, b)));
      expect(answers.map((a) => a.text)).toEqual(bodies.map((b) => `secure ${b}`));
      expect(seen.connections).toHaveLength(8);
      expect(contexts).toHaveBeenCalledTimes(1);
      expect(lookups.mock.calls.filter(([name]) => name === 'localhost')).toHaveLength(1);
    } finally {
      contexts.mockRestore();
      lookups.mockRestore();
    }
  });

  it("times a request's round trip from its connection's handshake, not with it", async () => {
    const { url } = await server((_req, body, res) => res.end(`secure ${body}`), 0, true);
    const target = new URL(url);
    // In front of the server, one that holds back its first answer (the handshake's) 500 ms.
    const slowHandshake = net.createServer((client) => {
      const upstream = net.connect(Number(target.port), '127.0.0.1');
      client.pipe(upstream);
      let first = true;
      upstream.on('data', (d: Buffer) => {
        if (!first) return void client.write(d);
        first = false;
        upstream.pause();
        setTimeout(() => (client.write(d), upstream.resume()), 500);
      });
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    const port = await listening(slowHandshake);
    const timed: number[] = [];
    const t = new Transport(`https://localhost:${port}/users/track`, 1, {
      tls: { ca: LOCALHOST_CERT },
      needed: { count: 1, roundTrip: (ms) => timed.push(ms) },
    });
    transports.push(t);
    const started = performance.now();
    expect((await post(t, 'a')).text).toBe('secure a');
    expect(performance.now() - started).toBeGreaterThanOrEqual(500);
    expect(timed).toHaveLength(1);
    expect(timed[0]).toBeLessThan(400);
  });

  it('close() drops its connections and fails what still waits', async () => {
    const { url, seen } = await server(() => undefined); // never answers
    const t = transport(url, 1);
    const under = failureOf(post(t, 'under way'));
    const waiting = failureOf(post(t, 'waiting'));
    await until(() => seen.bodies.length === 1);
    t.close();
    expect((await under)?.code).toBe('ECONNRESET');
    expect((await waiting)?.code).toBe('ECONNRESET');
    expect((await failureOf(post(t, 'after')))?.code).toBe('ECONNRESET');
    expect(seen.bodies).toEqual(['under way']);
  });

  it('an answer with no body (204), or after an interim 100, ends with its head; bytes after an answer end its connection', async () => {
    const { url, connections } = await rawServer([
      ['HTTP/1.1 204 No Content\r\nX-Id: 1\r\n\r\n'],
      ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext'],
    ]);
    const t = transport(url, 1);
    const first = await post(t, '{}', 1000); // a wait for the connection's end would time out
    expect([first.status, first.text, first.header('x-id')]).toEqual([204, '', '1']);
    expect((await post(t, '{}')).text).toBe('ok');
    expect(connections()).toBe(1);
    expect((await post(t, '{}')).text).toBe('ok');
    expect((await post(t, '{}')).text).toBe('next');
    expect(connections()).toBe(2);
  });

  it('refuses an answer that gives both a length and a coding (a sign of one smuggled or split)', async () => {
    const { url } = await rawServer([['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n']]);
    expect((await failureOf(post(transport(url, 1), '{}')))?.code).toBe('the answer is not HTTP');
  });
});
