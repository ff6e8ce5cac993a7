// BrazeClient over a scripted transport: one row per class of answer Braze can give to
// POST /users/track, and what the client makes of it (outcomes per object, retries, waits, or a
// fatal error). The sandbox tests cover the same paths over real HTTP; this table pins each one.
import { describe, expect, it } from 'vitest';
import { BrazeClient, BrazeFatalError, type BrazeClientOptions } from '../../shared/braze/client';
import type { Outcome } from '../../shared/braze/batch';
import { RequestBudget } from '../../shared/braze/request-budget';
import type { PostTransport, TransportResponse } from '../../shared/braze/transport';

type Answer = { status: number; body?: unknown; headers?: Record<string, string> } | { reset: string };
/** Answers for one request: the objects it carried (by marker), the attempt number for that body. */
type Script = (objects: string[], attempt: number) => Answer;

function response(a: { status: number; body?: unknown; headers?: Record<string, string> }): TransportResponse {
  const headers = Object.fromEntries(Object.entries(a.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    status: a.status,
    header: (n) => headers[n.toLowerCase()] ?? null,
    text: typeof a.body === 'string' ? a.body : JSON.stringify(a.body ?? { message: 'success' }),
  };
}

function clientFor(script: Script, options: Partial<BrazeClientOptions> = {}) {
  const requests: string[][] = [];
  const attempts = new Map<string, number>();
  const sleeps: number[] = [];
  const transport: PostTransport = {
    async post(body) {
      const objects = (JSON.parse(body.toString('utf8')) as { attributes: { m: string }[] }).attributes.map((o) => o.m);
      requests.push(objects);
      const id = objects.join(',');
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      const answer = script(objects, attempt);
      if ('reset' in answer) throw Object.assign(new Error('socket hang up'), { code: answer.reset });
      return response(answer);
    },
    close() {},
  };
  // Waits take no real time: the budget's clock moves by what was slept.
  let clock = Date.now();
  const sleep = async (ms: number) => {
    sleeps.push(ms);
    clock += ms;
  };
  const budget = new RequestBudget({ requestsPerWindow: 3000, sleep, now: () => clock });
  const client = new BrazeClient({
    baseUrl: 'https://rest.iad-03.braze.com',
    apiKey: 'k',
    budget,
    transport,
    sleep,
    maxAttempts: 3,
    ...options,
  });
  return { client, requests, sleeps };
}

const batch = (n: number) =>
  Array.from({ length: n }, (_, i) => Buffer.from(JSON.stringify({ external_id: `u${i}`, m: `o${i}` })));
const statuses = (outcomes: Outcome[]) => outcomes.map((o) => o.status);

interface Row {
  answer: string;
  script: Script;
  size?: number;
  outcomes?: (o: Outcome[]) => void;
  fatal?: RegExp;
  /** Requests sent in all. */
  requests: number;
  counts?: Partial<{ retried: number; rateLimited: number }>;
  /** Waits the client took (backoff or rate-limit pauses), checked loosely. */
  waited?: (sleeps: number[]) => void;
}

const table: Row[] = [
  {
    answer: '2xx success',
    script: () => ({ status: 201 }),
    requests: 1,
    outcomes: (o) => expect(statuses(o)).toEqual(['sent', 'sent', 'sent']),
  },
  {
    answer: '2xx with errors[] pointing at objects',
    script: () => ({
      status: 201,
      body: { message: 'success', errors: [{ type: "'email' must be a valid email", input_array: 'attributes', index: 1 }] },
    }),
    requests: 1,
    outcomes: (o) => {
      expect(statuses(o)).toEqual(['sent', 'rejected', 'sent']);
      expect(o[1]).toMatchObject({ reason: expect.stringMatching(/valid email/) });
    },
  },
  {
    answer: '2xx with an error without a usable index',
    script: () => ({ status: 201, body: { message: 'success', errors: [{ type: 'something' }, { type: 'x', index: 7 }] } }),
    requests: 1,
    outcomes: (o) => expect(statuses(o)).toEqual(['failed', 'failed', 'failed']),
  },
  {
    answer: '400 for a batch holding one bad object: split until it stands alone',
    size: 4,
    script: (objects) => (objects.includes('o2') ? { status: 400, body: { message: 'Invalid attributes' } } : { status: 201 }),
    // [o0..o3] 400 → probes [o0] ok, [o2] 400 → [o0,o1] ok, [o2,o3] 400 → [o2] 400, [o3] ok
    requests: 7,
    outcomes: (o) => {
      expect(statuses(o)).toEqual(['sent', 'sent', 'rejected', 'sent']);
      expect(o[2]).toMatchObject({ reason: expect.stringMatching(/400: Invalid attributes/) });
    },
  },
  {
    answer: '400 for the request as a whole (every object, alone too): failed, not rejected, in 3 requests',
    size: 75,
    script: () => ({ status: 400, body: { message: 'Request blocked by policy' } }),
    // the batch, then one object of each half alone: both refused the same way
    requests: 3,
    outcomes: (o) => {
      expect(new Set(statuses(o))).toEqual(new Set(['failed']));
      expect(o[0]).toMatchObject({
        reason: expect.stringMatching(/refused the request as a whole \(400: Request blocked by policy\).*next run/),
      });
    },
  },
  {
    answer: '400 for the request as a whole, small batch: split to the end, then failed',
    size: 3,
    script: () => ({ status: 400, body: { message: 'Request blocked by policy' } }),
    requests: 5,
    outcomes: (o) => expect(statuses(o)).toEqual(['failed', 'failed', 'failed']),
  },
  {
    answer: '413 (body too large): split like a 400',
    size: 2,
    script: (objects) => (objects.length > 1 ? { status: 413, body: 'Request Entity Too Large' } : { status: 201 }),
    requests: 3,
    outcomes: (o) => expect(statuses(o)).toEqual(['sent', 'sent']),
  },
  {
    answer: '401',
    script: () => ({ status: 401, body: { message: 'Invalid API key' } }),
    requests: 1,
    fatal: /401 Unauthorized.*invalid or was revoked/,
  },
  {
    answer: '403',
    script: () => ({ status: 403, body: { message: 'no permission' } }),
    requests: 1,
    fatal: /403 Forbidden.*lacks the users\.track permission/,
  },
  {
    answer: '404',
    script: () => ({ status: 404 }),
    requests: 1,
    fatal: /404 for rest\.iad-03\.braze\.com\/users\/track.*REST endpoint/,
  },
  {
    answer: '429 with X-RateLimit-Retry-After, then 2xx',
    script: (_, attempt) =>
      attempt === 1
        ? { status: 429, headers: { 'X-RateLimit-Retry-After': '7', 'X-RateLimit-Remaining': '0' } }
        : { status: 201 },
    requests: 2,
    counts: { rateLimited: 1, retried: 1 },
    outcomes: (o) => expect(statuses(o)).toEqual(['sent', 'sent', 'sent']),
    waited: (s) => expect(Math.max(...s)).toBeGreaterThan(6000),
  },
  {
    answer: '429 without any header, then 2xx',
    script: (_, attempt) => (attempt === 1 ? { status: 429 } : { status: 201 }),
    requests: 2,
    counts: { rateLimited: 1 },
    outcomes: (o) => expect(statuses(o)).toEqual(['sent', 'sent', 'sent']),
    waited: (s) => expect(Math.max(...s)).toBeGreaterThan(500),
  },
  {
    answer: '5xx, then 2xx: retried with backoff',
    script: (_, attempt) => (attempt === 1 ? { status: 503 } : { status: 201 }),
    requests: 2,
    counts: { retried: 1 },
    outcomes: (o) => expect(statuses(o)).toEqual(['sent', 'sent', 'sent']),
    waited: (s) => expect(s.length).toBeGreaterThan(0),
  },
  {
    answer: '5xx every time: failed after the attempts, never rejected',
    script: () => ({ status: 502 }),
    requests: 3,
    outcomes: (o) => {
      expect(statuses(o)).toEqual(['failed', 'failed', 'failed']);
      expect(o[0]).toMatchObject({ reason: expect.stringMatching(/after 3 attempts \(HTTP 502\)/) });
    },
  },
  {
    answer: 'connection reset, then 2xx',
    script: (_, attempt) => (attempt === 1 ? { reset: 'ECONNRESET' } : { status: 201 }),
    requests: 2,
    counts: { retried: 1 },
    outcomes: (o) => expect(statuses(o)).toEqual(['sent', 'sent', 'sent']),
  },
  {
    answer: 'resets every time: failed naming the cause',
    script: () => ({ reset: 'ECONNRESET' }),
    requests: 3,
    outcomes: (o) => expect(o[0]).toMatchObject({ status: 'failed', reason: expect.stringMatching(/ECONNRESET/) }),
  },
  ...(
    [
      'not json',
      'null',
      '[]',
      '"success"',
      '{"message":"success","errors":"oops"}',
      '{"message":"success","errors":{"index":0}}',
      '{"message":"success","errors":[null]}',
    ] as const
  ).map((body): Row => ({
    answer: `malformed 2xx: ${body}`,
    script: () => ({ status: 200, body }),
    requests: 1,
    outcomes: (o) => {
      expect(statuses(o)).toEqual(['failed', 'failed', 'failed']);
      expect(o[0]).toMatchObject({ reason: expect.stringMatching(/unreadable body/) });
    },
  })),
  {
    answer: '2xx whose message is not success',
    script: () => ({ status: 200, body: { message: 'queued' } }),
    requests: 1,
    outcomes: (o) =>
      expect(o[0]).toMatchObject({ status: 'failed', reason: expect.stringMatching(/"queued"; not counted as delivered/) }),
  },
];

describe('BrazeClient, answer by answer', () => {
  it.each(table)('$answer', async (row) => {
    const { client, requests, sleeps } = clientFor(row.script);
    const sent = client.track(batch(row.size ?? 3));
    if (row.fatal) {
      const error = await sent.then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BrazeFatalError);
      expect((error as Error).message).toMatch(row.fatal);
    } else {
      row.outcomes!(await sent);
    }
    expect(requests.length).toBe(row.requests);
    expect(client.requests.sent).toBe(row.requests);
    if (row.counts) expect(client.requests).toMatchObject(row.counts);
    row.waited?.(sleeps);
  });
});

describe('BrazeClient, why objects failed', () => {
  it('keeps each distinct reason once, as one line without the key; a stop is not one', async () => {
    let stopping = false;
    const { client } = clientFor(
      (objects) =>
        objects.includes('o0')
          ? { status: 200, body: { message: 'queued\r\nAuthorization: Bearer sk-secret-1' } }
          : { reset: 'ECONNRESET' },
      { apiKey: 'sk-secret-1', shouldStop: () => stopping },
    );
    await client.track(batch(1));
    await client.track(batch(1)); // the same reason again
    await client.track([batch(2)[1]!]);
    stopping = true;
    const [notSent] = await client.track(batch(1));
    expect(notSent).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^not sent/) });
    expect([...client.failureReasons]).toEqual([
      'Braze answered "queued Authorization: Bearer [key]"; not counted as delivered',
      'Braze unavailable after 3 attempts (ECONNRESET)',
    ]);
  });

  it('keeps at most five reasons, each cut to 150 characters', async () => {
    const { client } = clientFor((objects) => ({ status: 200, body: { message: `${objects[0]}: ${'x'.repeat(300)}` } }));
    for (let i = 0; i < 8; i++) await client.track([Buffer.from(JSON.stringify({ external_id: `u${i}`, m: `o${i}` }))]);
    const reasons = [...client.failureReasons];
    expect(reasons).toHaveLength(5);
    expect(reasons[0]).toMatch(/^Braze answered "o0: x+…$/);
    for (const r of reasons) expect(r.length).toBeLessThanOrEqual(150);
  });

  it('counts a request in the budget until its answer: the next run on the limit waits for it', async () => {
    let clock = 0;
    const budget = new RequestBudget({ requestsPerWindow: 3, now: () => clock, sleep: async (ms) => void (clock += ms) });
    const transport: PostTransport = {
      async post() {
        clock += 1000; // Braze takes a second to answer
        return response({ status: 201 });
      },
      close() {},
    };
    const client = new BrazeClient({ baseUrl: 'https://rest.iad-03.braze.com', apiKey: 'k', budget, transport });
    await client.track(batch(1));
    // Two requests a window (3 × 97 %), a step of 1.5 s: even again a step after its answer.
    expect(client.msUntilEven()).toBe(1500);
  });
});
