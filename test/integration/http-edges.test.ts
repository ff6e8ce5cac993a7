// The HTTP edge: path ids are checked before storage sees them (404), answers carry nosniff and
// HSTS, only content-hashed console files are cached for good, a cancel is never let through on a
// failed read, and the Braze segments lookup never follows a redirect with the key. On Azurite
// and loopback servers.
import { createServer, type Server } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { connectionItem } from '../../functions/connectionItem';
import { consolePage } from '../../functions/console';
import { exportItem } from '../../functions/exportItem';
import { exportRun } from '../../functions/exportRun';
import { health } from '../../functions/health';
import { runCancel } from '../../functions/runCancel';
import { runItem } from '../../functions/runItem';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { listBrazeSegments } from '../../shared/braze/segments';
import { services } from '../../shared/services';
import { call, useAzurite } from '../helpers/app';
import { ADMIN, createExport } from '../helpers/engine';

useAzurite();

describe('path ids are checked at the edge', () => {
  const cases = [
    ['GET /api/exports/{id}', exportItem, 'id', 'a/b'],
    ['GET /api/exports/{id}', exportItem, 'id', "x' or ''='"],
    ['GET /api/exports/{id}', exportItem, 'id', '\u0000'],
    ['GET /api/exports/{id}', exportItem, 'id', 'run-all'],
    ['POST /api/exports/{id}/run', exportRun, 'id', '..%2F..'],
    ['GET /api/connections/{id}', connectionItem, 'id', 'a#b?c'],
    ['GET /api/runs/{runId}', runItem, 'runId', 'a/b'],
    ['GET /api/runs/{runId}', runItem, 'runId', '00000000-0000-4000-8000-000000000000.x'],
    ['POST /api/runs/{runId}/cancel', runCancel, 'runId', '\\'],
  ] as const;
  it.each(cases)('%s with a bad id in the path is a 404 (%#)', async (route, handler, param, value) => {
    const res = await call(handler, { method: route.split(' ')[0]!, path: 'x', params: { [param]: value } });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });
});

describe('headers', () => {
  it('API answers carry nosniff, HSTS and no-store; health too', async () => {
    const res = await call(exportItem, { method: 'GET', path: 'x', params: { id: '00000000-0000-4000-8000-000000000000' } });
    expect(res.status).toBe(404);
    expect(res.headers).toMatchObject({
      'x-content-type-options': 'nosniff',
      'strict-transport-security': 'max-age=31536000',
      'cache-control': 'no-store',
    });
    const h = await health(new HttpRequest({ method: 'GET', url: 'http://localhost/api/health' }), new InvocationContext());
    expect(h.headers).toMatchObject({ 'X-Content-Type-Options': 'nosniff', 'Strict-Transport-Security': 'max-age=31536000' });
  });

  it('the console page is revalidated under any name; only content-hashed files are immutable', async () => {
    const get = async (path: string) =>
      (await consolePage(new HttpRequest({ method: 'GET', url: `http://localhost/${path}`, params: { path } }))) as {
        status: number;
        headers: Record<string, string>;
      };
    for (const path of ['', 'index.html', 'console/index.html']) {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(res.headers['Cache-Control']).toBe('no-cache');
      expect(res.headers['Strict-Transport-Security']).toBe('max-age=31536000');
    }
    const html = (await consolePage(new HttpRequest({ method: 'GET', url: 'http://localhost/', params: { path: '' } }))).body;
    const script = /src="\/console\/([^"]+\.js)"/.exec(String(html))![1]!;
    expect((await get(`console/${script}`)).headers['Cache-Control']).toBe('public, max-age=31536000, immutable');
  });
});

describe('cancel', () => {
  it('a failed read of the export is an error, not a pass for a Contributor', async () => {
    const app = services();
    const conn = (
      await app.connections.create(ADMIN, {
        displayName: `Admins only ${Date.now()}`,
        restEndpoint: 'rest.iad-03.braze.com',
        apiKey: 'key-0000000000000000',
        consent: true,
      })
    ).value;
    const exp = await createExport(conn.id);
    const outcome = await app.runs.runNow(ADMIN, exp.id, false);
    if (!('queued' in outcome)) throw new Error('expected a queued run');
    await app.storage.runQueue.clearMessages();
    // The export row cannot be read (not a 404).
    await app.storage
      .table('exports')
      .upsertEntity({ partitionKey: 'export', rowKey: exp.id, data: '{broken', connectionId: conn.id }, 'Replace');
    const res = await call(runCancel, { method: 'POST', path: 'x', params: { runId: outcome.queued.id }, as: 'Contributor' });
    expect(res.status).not.toBe(202);
    expect((await app.runs.get(outcome.queued.id)).status).toBe('queued');
  });
});

describe('Braze segments lookup', () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));
  const listen = (server: Server) =>
    new Promise<string>((resolve) => {
      servers.push(server);
      server.listen(0, '127.0.0.1', () => {
        const a = server.address();
        resolve(`http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`);
      });
    });

  it('does not follow a redirect carrying the key', async () => {
    const seen: (string | undefined)[] = [];
    const elsewhere = await listen(
      createServer((req, res) => {
        seen.push(req.headers.authorization);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"segments":[]}');
      }),
    );
    const braze = await listen(createServer((_req, res) => res.writeHead(302, { Location: `${elsewhere}/steal` }).end()));
    const answer = await listBrazeSegments(braze, 'secret-key');
    expect(answer.available).toBe(false);
    expect(seen).toEqual([]);
  });
});
