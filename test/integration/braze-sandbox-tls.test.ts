// The sandbox over https, as the benchmark's --tls runs it (Braze itself is https only): the app's
// client, trusting the loopback certificate, has its batch stored; one that does not trust it sends
// nothing and says why.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrazeSandbox, SANDBOX_KEY } from '../../scripts/braze-sandbox';
import { LOCALHOST_CERT } from '../../scripts/localhost-tls';
import { BrazeClient } from '../../shared/braze/client';
import { RequestBudget } from '../../shared/braze/request-budget';
import { Transport } from '../../shared/braze/transport';

const sandbox = new BrazeSandbox({ tls: true });
let url: string;

beforeAll(async () => {
  url = await sandbox.start();
});
afterAll(() => sandbox.stop());

function client(ca?: string) {
  const transport = new Transport(`${url}/users/track`, 2, ca ? { tls: { ca } } : {});
  return new BrazeClient({
    baseUrl: url,
    apiKey: SANDBOX_KEY,
    budget: new RequestBudget({ requestsPerWindow: 3000 }),
    transport,
    maxAttempts: 2,
    sleep: async () => undefined,
  });
}

const object = (id: string) => Buffer.from(JSON.stringify({ external_id: id, first_name: 'Ada' }));

describe('the Braze sandbox over https', () => {
  it('serves https://localhost with the loopback certificate: a client that trusts it has its batch stored', async () => {
    expect(url).toMatch(/^https:\/\/localhost:\d+$/);
    const before = sandbox.stats.trackConnections;
    const braze = client(LOCALHOST_CERT);
    try {
      expect(await braze.track([object('tls-1'), object('tls-2')])).toEqual([{ status: 'sent' }, { status: 'sent' }]);
    } finally {
      braze.close();
    }
    expect(sandbox.profiles.get('external_id:tls-1')?.attributes).toMatchObject({ first_name: 'Ada' });
    expect(sandbox.stats.trackConnections - before).toBe(1);
  });

  it('a client that does not trust the certificate sends nothing: the batch fails, naming the certificate error', async () => {
    const before = { ...sandbox.stats };
    const braze = client();
    try {
      const [outcome] = await braze.track([object('tls-3')]);
      expect(outcome).toMatchObject({ status: 'failed', reason: expect.stringMatching(/SELF_SIGNED|CERT/) });
    } finally {
      braze.close();
    }
    expect(sandbox.profiles.has('external_id:tls-3')).toBe(false);
    // Its connections were accepted, and carried no request.
    expect(sandbox.stats.connections).toBeGreaterThan(before.connections);
    expect(sandbox.stats.trackConnections).toBe(before.trackConnections);
  });
});
