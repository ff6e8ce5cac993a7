// shared/cached-lookup.ts: a host name looked up once for a while, shared by the connections opened
// meanwhile (real lookups of localhost; a failure made by hand, as no name fails reliably offline).
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cachedLookup } from '../../shared/cached-lookup';

const ask = (lookup: LookupFunction, options: dns.LookupOptions = {}) =>
  new Promise<{ address: string | dns.LookupAddress[]; family?: number }>((resolve, reject) =>
    lookup('localhost', options, (error, address, family) => (error ? reject(error) : resolve({ address, family }))),
  );

afterEach(() => vi.restoreAllMocks());

describe('cachedLookup', () => {
  it('answers as dns.lookup does, and looks a name up once for the lookups within its time', async () => {
    const lookups = vi.spyOn(dns, 'lookup');
    let now = 0;
    const lookup = cachedLookup(10_000, () => now);
    const direct = await dns.promises.lookup('localhost', { all: true });
    lookups.mockClear();
    const answers = await Promise.all(Array.from({ length: 5 }, () => ask(lookup, { all: true })));
    expect(answers.map((a) => a.address)).toEqual(answers.map(() => direct));
    expect(lookups).toHaveBeenCalledTimes(1);
    // Another kind of question (one address) is asked on its own.
    const one = await ask(lookup);
    expect(one.address).toBe(direct[0]!.address);
    expect(lookups).toHaveBeenCalledTimes(2);
    now = 9_999;
    await ask(lookup, { all: true });
    expect(lookups).toHaveBeenCalledTimes(2);
    now = 10_000; // its time is up: looked up again
    await ask(lookup, { all: true });
    expect(lookups).toHaveBeenCalledTimes(3);
  });

  it('does not keep a failure: the next connection looks the name up again', async () => {
    const failure = Object.assign(new Error('getaddrinfo EAI_AGAIN localhost'), { code: 'EAI_AGAIN' });
    const lookups = vi
      .spyOn(dns, 'lookup')
      .mockImplementationOnce(((_name: string, _options: unknown, callback: (e: Error) => void) =>
        callback(failure)) as unknown as typeof dns.lookup);
    const lookup = cachedLookup(10_000, () => 0);
    await expect(ask(lookup)).rejects.toMatchObject({ code: 'EAI_AGAIN' });
    expect((await ask(lookup)).address).toMatch(/^(127\.0\.0\.1|::1)$/);
    expect(lookups).toHaveBeenCalledTimes(2);
  });
});
