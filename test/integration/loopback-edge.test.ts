// With a local-only trust setting on (anonymous Admin, trusted principal header), the shared HTTP
// edge answers only requests addressed to a loopback host — whichever host serves the functions
// (Core Tools checks nothing and may listen on every interface). On Azurite.
import { describe, expect, it } from 'vitest';
import { exportsCollection } from '../../functions/exportsCollection';
import { isLoopbackHost } from '../../shared/loopback';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { health } from '../../functions/health';
import { call, principalHeaders, useAzurite } from '../helpers/app';

useAzurite({ LOCAL_ANONYMOUS_ADMIN: 'true' });

describe('local-only trust answers loopback only', () => {
  it.each(['192.168.1.20:7071', 'evil.example', 'evil.example:7071', '127.0.0.1.evil.example', 'localhost.evil.example'])(
    'Host %s is refused (421), anonymous or with a principal header',
    async (host) => {
      for (const as of ['anonymous', 'Admin'] as const) {
        const res = await call(exportsCollection, { method: 'GET', path: 'exports', as, headers: { host } });
        expect(res.status).toBe(421);
        expect(res.body.error.code).toBe('misdirected_request');
      }
    },
  );

  it.each(['localhost:7071', '127.0.0.1', '[::1]:7071', 'LOCALHOST'])('Host %s is served', async (host) => {
    const res = await call(exportsCollection, { method: 'GET', path: 'exports', as: 'anonymous', headers: { host } });
    expect(res.status).toBe(200);
  });

  it('health shows its checks to an Admin principal only on a loopback request', async () => {
    const ask = async (host: string) =>
      (
        await health(
          new HttpRequest({ method: 'GET', url: `http://${host}/api/health`, headers: { host, ...principalHeaders('Admin') } }),
          new InvocationContext(),
        )
      ).jsonBody as Record<string, unknown>;
    expect(await ask('localhost:7071')).toHaveProperty('checks');
    expect(Object.keys(await ask('evil.example'))).toEqual(['status']);
  });

  it('without a Host header, the address the request was made to counts', async () => {
    expect((await call(exportsCollection, { method: 'GET', path: 'exports', as: 'anonymous' })).status).toBe(200);
    expect(isLoopbackHost(null)).toBe(false);
  });
});
