// Over real HTTP against the local host with Azurite: the foundation's "done when".
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimAzurite, type TestStorage } from '../helpers/azurite';
import { principalHeaders, testEnv, type Who } from '../helpers/app';
import { startHostProcess, type HostProcess } from '../helpers/host-process';

const API_KEY = 'e2e-secret-braze-key-7f3a9c2d41';
let azurite: TestStorage;
let host: HostProcess;
const seen: string[] = [];

beforeAll(async () => {
  azurite = await claimAzurite();
  host = await startHostProcess(testEnv(azurite.connectionString));
});
afterAll(async () => {
  await host?.stop();
  await azurite?.stop();
});

async function http(method: string, path: string, as: Who, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${host.url}${path}`, {
    method,
    headers: { ...principalHeaders(as), ...(method !== 'GET' ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  seen.push(text, JSON.stringify([...res.headers]));
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

describe('local host over HTTP', () => {
  let sharedId: string;
  let privateId: string;
  let exportId: string;

  it('serves the registered functions and answers unknown routes with 404', async () => {
    expect((await http('GET', '/api/nope', 'Admin')).status).toBe(404);
    expect((await http('PUT', '/api/connections', 'Admin', {})).status).toBe(405);
  });

  it('an admin creates connections and an export', async () => {
    const shared = await http('POST', '/api/connections', 'Admin', {
      displayName: 'Braze production',
      restEndpoint: 'rest.iad-03.braze.com',
      apiKey: API_KEY,
      allowContributors: true,
      consent: true,
    });
    expect(shared.status).toBe(201);
    expect(shared.headers.get('location')).toBe(`/api/connections/${shared.body.id}`);
    sharedId = shared.body.id;
    const priv = await http('POST', '/api/connections', 'Admin', {
      displayName: 'Braze sandbox workspace',
      restEndpoint: 'rest.fra-01.braze.eu',
      apiKey: `${API_KEY}-2`,
      consent: true,
    });
    expect(priv.status).toBe(201);
    privateId = priv.body.id;

    const exp = await http('POST', '/api/exports', 'Admin', {
      name: 'High value customers to Braze',
      connectionId: sharedId,
      brazeSegmentApiId: '0000-0000-0000',
      source: { container: 'dynamics365customerinsights', folder: 'CustomerInsights_abc/BrazeExport' },
      segments: ['HighValueSegment', 'ChurnRisk'],
      matching: {
        profileId: 'CustomerId',
        email: 'PrimaryEmail',
        brazeCustomerId: 'BrazeUserId',
        attributes: { first_name: 'FirstName' },
      },
      membership: { attribute: '0000-0000-0000' },
      schedule: { enabled: true },
    });
    expect(exp.status).toBe(201);
    exportId = exp.body.id;
  });

  it('a contributor sees only shared connections, as {id, displayName, type}', async () => {
    const res = await http('GET', '/api/connections', 'Contributor');
    expect(res.status).toBe(200);
    expect(res.body.value).toEqual([{ id: sharedId, displayName: 'Braze production', type: 'Braze' }]);
    expect((await http('GET', `/api/connections/${privateId}`, 'Contributor')).status).toBe(404);
  });

  it('a viewer can list exports but gets 403 on create', async () => {
    const list = await http('GET', '/api/exports', 'Viewer');
    expect(list.status).toBe(200);
    expect(list.body.value.map((e: any) => e.id)).toEqual([exportId]);
    const create = await http('POST', '/api/exports', 'Viewer', { ...list.body.value[0], id: undefined });
    expect(create.status).toBe(403);
    expect((await http('GET', '/api/exports', 'Viewer')).body.value).toHaveLength(1);
  });

  it('refuses a write that is not JSON (what a cross-site form sends) with 415, creating nothing', async () => {
    const before = (await http('GET', '/api/connections', 'Admin')).body.value.length;
    const body = JSON.stringify({
      displayName: 'Form post',
      restEndpoint: 'rest.iad-03.braze.com',
      apiKey: API_KEY,
      consent: true,
    });
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await http('POST', '/api/connections', 'Admin', body, { 'content-type': type });
      expect(res.status).toBe(415);
      expect(res.body.error.message).toMatch(/Content-Type: application\/json/);
    }
    expect(
      (await http('POST', `/api/exports/${exportId}/run`, 'Admin', undefined, { 'content-type': 'text/plain' })).status,
    ).toBe(415);
    expect((await http('GET', '/api/connections', 'Admin')).body.value.length).toBe(before);
  });

  it('answers only requests addressed to a loopback host name (no DNS rebinding)', async () => {
    const status = (hostHeader: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          `${host.url}/api/connections`,
          { headers: { host: hostHeader, ...principalHeaders('Admin') } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
    expect(await status('evil.example:7071')).toBe(421);
    expect(await status('127.0.0.1.nip.io')).toBe(421);
    expect(await status(`localhost:${new URL(host.url).port}`)).toBe(200);
  });

  it('reads a run request body sent without Content-Length (chunked)', async () => {
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        `${host.url}/api/exports/${exportId}/run`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', ...principalHeaders('Admin') },
        },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.write('{"fullSync":');
      req.end('"yes"}');
    });
    // The body was read: its bad field is named (without reading it, the run would have been queued).
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text).error.issues).toEqual([expect.objectContaining({ path: 'fullSync' })]);
  });

  it('refuses forged principals when Easy Auth is off and nothing says trust them', async () => {
    const strict = await startHostProcess({ ...testEnv(azurite.connectionString), LOCAL_TRUST_PRINCIPAL_HEADER: 'false' });
    try {
      const res = await fetch(`${strict.url}/api/connections`, { headers: principalHeaders('Admin') });
      expect(res.status).toBe(401);
      expect((await res.json()).error.message).toMatch(/Easy Auth/);
    } finally {
      await strict.stop();
    }
  });

  it('refuses to start with a malformed setting, naming it', async () => {
    await expect(startHostProcess({ ...testEnv(azurite.connectionString), LOCAL_SECRET_KEY: 'too-short' })).rejects.toThrow(
      /LOCAL_SECRET_KEY/,
    );
  });

  it('an oversized body is refused with 413', async () => {
    const res = await http('POST', '/api/connections', 'Admin', JSON.stringify({ displayName: 'x'.repeat(5 * 1024 * 1024) }));
    expect(res.status).toBe(413);
  });

  it('no response or log line ever contains the API key', () => {
    expect(seen.length).toBeGreaterThan(5);
    for (const text of seen) expect(text).not.toContain(API_KEY);
    expect(host.output()).toContain('POST /api/connections');
    expect(host.output()).not.toContain(API_KEY);
  });
});
