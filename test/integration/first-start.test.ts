// A fresh Flex instance minutes after deployment: its identity's role grants are not effective yet,
// so storage refuses the first calls (403). The app must not remember that failure: once storage
// answers, requests succeed without a restart.
import { createServer, request, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionsCollection } from '../../functions/connectionsCollection';
import { azuriteConnectionString } from '../../scripts/azurite';
import { resetServices } from '../../shared/services';
import { call, testEnv } from '../helpers/app';
import { claimAzurite, type TestStorage } from '../helpers/azurite';

let azurite: TestStorage;
const envBefore = { ...process.env };
const proxies: Server[] = [];
/** While true, storage answers every call 403 AuthorizationPermissionMismatch, as before a role grant takes effect. */
let denying = true;

/** A proxy in front of one Azurite port that refuses everything while `denying`. */
async function proxyTo(port: number): Promise<number> {
  const server = createServer((req, res) => {
    if (denying) {
      res.writeHead(403, { 'Content-Type': 'application/xml', 'x-ms-error-code': 'AuthorizationPermissionMismatch' });
      res.end(
        '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This request is not authorized to perform this operation using this permission.</Message></Error>',
      );
      return;
    }
    const upstream = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxies.push(server);
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

beforeAll(async () => {
  azurite = await claimAzurite();
  const ports = {
    blob: await proxyTo(azurite.ports.blob),
    queue: await proxyTo(azurite.ports.queue),
    table: await proxyTo(azurite.ports.table),
  };
  Object.assign(process.env, testEnv(azuriteConnectionString(ports, azurite.account)));
  resetServices();
});
afterAll(async () => {
  for (const p of proxies) await new Promise((r) => p.close(r));
  await azurite?.stop();
  for (const name of Object.keys(process.env)) if (!(name in envBefore)) delete process.env[name];
  Object.assign(process.env, envBefore);
});

describe('first start', () => {
  it('storage that refuses the first calls: requests fail meanwhile, then succeed once it answers — no restart', async () => {
    const refused = await call(connectionsCollection, { method: 'GET', path: 'connections', as: 'Admin' });
    expect(refused.status).toBe(500);
    expect(JSON.stringify(refused.body)).not.toMatch(/AuthorizationPermissionMismatch|AccountKey/);
    const again = await call(connectionsCollection, { method: 'GET', path: 'connections', as: 'Admin' });
    expect(again.status).toBe(500);

    denying = false; // the role grants took effect
    const ok = await call(connectionsCollection, { method: 'GET', path: 'connections', as: 'Admin' });
    expect(ok.status).toBe(200);
    expect(ok.body.value).toEqual([]);
  });
});
