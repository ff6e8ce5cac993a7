import { describe, expect, it } from 'vitest';
import { connectionItem } from '../../functions/connectionItem';
import { connectionsCollection } from '../../functions/connectionsCollection';
import { encodePrincipal } from '../../shared/auth';
import { call, resourceClient, useAzurite } from '../helpers/app';

useAzurite();

const KEY = 'br-live-key-0123456789abcdef';
let n = 0;
const body = (over: Record<string, unknown> = {}) => ({
  displayName: `Braze ${++n}`,
  restEndpoint: 'rest.iad-03.braze.com',
  apiKey: KEY,
  allowContributors: false,
  consent: true,
  ...over,
});

const { create, list, item, expectUnchanged } = resourceClient(connectionsCollection, connectionItem, 'connections');

describe('connections API', () => {
  it('creates a connection, never echoing the key, and lists and reads it', async () => {
    const res = await create(body({ displayName: 'Braze production' }));
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe(`/api/connections/${res.body.id}`);
    expect(res.headers.etag).toBe(res.body.etag);
    expect(res.body).toMatchObject({ displayName: 'Braze production', type: 'Braze', restEndpoint: 'rest.iad-03.braze.com' });
    expect(res.body.apiKey).toEqual({ source: 'stored', hint: '…cdef' });
    expect(JSON.stringify(res.body)).not.toContain(KEY);
    const got = await item('GET', res.body.id);
    expect(got.status).toBe(200);
    expect(JSON.stringify(got.body)).not.toContain(KEY);
    expect((await list()).body.value.map((c: any) => c.id)).toContain(res.body.id);
  });

  it('keeps who created it and who agreed to the data-privacy terms by Entra object id and tenant', async () => {
    const ids = { objectId: '0b6f1c1f-1111-4000-8000-000000000001', tenantId: '72f988bf-2222-4000-8000-000000000002' };
    const res = await create(body(), { header: encodePrincipal('Admin', 'Ann Admin', ids) });
    expect(res.status).toBe(201);
    expect(res.body.createdByPrincipal).toEqual({ name: 'Ann Admin', ...ids });
    expect(res.body.consent).toMatchObject({ agreedBy: 'Ann Admin', agreedByPrincipal: { name: 'Ann Admin', ...ids } });
    const renamed = await item('PATCH', res.body.id, {
      body: { displayName: `Renamed ${n}` },
      as: { header: encodePrincipal('Admin', 'Bob', { objectId: 'oid-bob', tenantId: ids.tenantId }) },
    });
    expect(renamed.body.updatedByPrincipal).toEqual({ name: 'Bob', objectId: 'oid-bob', tenantId: ids.tenantId });
    expect(renamed.body.createdByPrincipal).toEqual({ name: 'Ann Admin', ...ids });
  });

  it('stores the key encrypted, not in plain text', async () => {
    const res = await create(body());
    const { services } = await import('../../shared/services');
    const row = await services().storage.table('connections').getEntity<{ data: string }>('connection', `id:${res.body.id}`);
    expect(row.data).not.toContain(KEY);
    const stored = JSON.parse(row.data);
    expect(await services().secrets.get(stored.apiKey.reference)).toBe(KEY);
  });

  it('accepts a reference to a customer Key Vault secret instead of a key', async () => {
    const uri = 'https://contoso-kv.vault.azure.net/secrets/braze-key';
    const res = await create(body({ apiKey: undefined, apiKeySecretUri: uri }));
    expect(res.status).toBe(201);
    expect(res.body.apiKey).toEqual({ source: 'keyVaultReference', hint: null, secretUri: uri });
  });

  it('keeps display names unique (case-insensitive), on create and rename', async () => {
    const a = await create(body({ displayName: 'Unique name' }));
    await expectUnchanged(() => create(body({ displayName: 'unique NAME' })), 409, /already exists/);
    const b = await create(body({ displayName: 'Other name' }));
    await expectUnchanged(() => item('PATCH', b.body.id, { body: { displayName: 'Unique Name' } }), 409, /already exists/);
    const renamed = await item('PATCH', a.body.id, { body: { displayName: 'Renamed' } });
    expect(renamed.status).toBe(200);
    // The old name is free again.
    expect((await create(body({ displayName: 'Unique name' }))).status).toBe(201);
  });

  it('patches with If-Match: concurrent PATCHes with the same ETag, one wins and one gets 412', async () => {
    const c = await create(body());
    const etag = c.body.etag;
    const results = await Promise.all([
      item('PATCH', c.body.id, { body: { displayName: `${c.body.displayName} A` }, headers: { 'if-match': etag } }),
      item('PATCH', c.body.id, { body: { displayName: `${c.body.displayName} B` }, headers: { 'if-match': etag } }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 412]);
    const winner = results.find((r) => r.status === 200)!;
    expect((await item('GET', c.body.id)).body.displayName).toBe(winner.body.displayName);
    expect(results.find((r) => r.status === 412)!.body.error.code).toBe('precondition_failed');
  });

  it('rotates the key and changes sharing', async () => {
    const c = await create(body());
    const res = await item('PATCH', c.body.id, { body: { apiKey: 'rotated-key-00000000wxyz', allowContributors: true } });
    expect(res.status).toBe(200);
    expect(res.body.apiKey.hint).toBe('…wxyz');
    expect(res.body.allowContributors).toBe(true);
    expect(res.body.etag).not.toBe(c.body.etag);
  });

  it('deletes a connection', async () => {
    const c = await create(body());
    expect((await item('DELETE', c.body.id)).status).toBe(204);
    expect((await item('GET', c.body.id)).status).toBe(404);
  });

  describe('bad input', () => {
    it('malformed JSON is a 400', async () => {
      await expectUnchanged(
        () => call(connectionsCollection, { method: 'POST', path: 'connections', rawBody: '{"displayName": ' }),
        400,
        /not valid JSON/,
      );
    });
    it('wrong types name the field', async () => {
      const res = await expectUnchanged(
        () => create(body({ allowContributors: 'yes', requestBudget: '10' })),
        400,
        /allowContributors/,
      );
      expect(res.body.error.issues.map((i: any) => i.path)).toEqual(
        expect.arrayContaining(['allowContributors', 'requestBudget']),
      );
    });
    it('unknown fields are named', async () => {
      const res = await expectUnchanged(() => create(body({ color: 'blue' })), 400, /color/);
      expect(res.body.error.issues).toContainEqual({ path: 'color', message: 'is not a known field' });
    });
    it('an oversized body is a 413', async () => {
      await expectUnchanged(() => create(body({ displayName: 'x'.repeat(300 * 1024) })), 413, /larger than/);
    });
    it('consent must be true', async () => {
      await expectUnchanged(() => create(body({ consent: false })), 400, /consent/);
      await expectUnchanged(() => create(body({ consent: undefined })), 400, /consent/);
    });
    it.each([
      ['169.254.169.254'],
      ['http://rest.iad-01.braze.com.evil.example'],
      ['rest.iad-01.braze.com/../x'],
      ['http://rest.iad-01.braze.com'],
      ['https://user:pw@rest.iad-01.braze.com'],
      ['rest.iad-01.braze.com:8443'],
      ['localhost'],
      ['10.0.0.5'],
      ['rest.iad-01.braze.com.'],
      ['api.example.com'],
    ])('endpoint %s is refused', async (restEndpoint) => {
      await expectUnchanged(() => create(body({ restEndpoint })), 400, /restEndpoint/);
    });
    it('an empty key is refused', async () => {
      await expectUnchanged(() => create(body({ apiKey: '' })), 400, /apiKey/);
    });
    it('a 2 MB key is refused without echoing it', async () => {
      const res = await create(body({ apiKey: 'k'.repeat(2 * 1024 * 1024) }));
      expect([400, 413]).toContain(res.status);
      expect(JSON.stringify(res.body).length).toBeLessThan(2000);
      const mid = await create(body({ apiKey: 'k'.repeat(100 * 1024) }));
      expect(mid.status).toBe(400);
      expect(mid.body.error.issues[0].path).toBe('apiKey');
    });
    it('both a key and a secret URI is refused', async () => {
      await expectUnchanged(() => create(body({ apiKeySecretUri: 'https://kv1.vault.azure.net/secrets/x' })), 400, /exactly one/);
    });
    it('a secret URI outside Key Vault is refused', async () => {
      await expectUnchanged(
        () => create(body({ apiKey: undefined, apiKeySecretUri: 'https://evil.example/secrets/x' })),
        400,
        /apiKeySecretUri/,
      );
    });
  });

  describe('identity and roles', () => {
    it('no principal is a 401', async () => {
      await expectUnchanged(() => create(body(), 'anonymous'), 401, /Sign-in required/);
    });
    it('a principal that is not base64 JSON is a 401', async () => {
      await expectUnchanged(() => create(body(), { header: 'not-a-principal!!' }), 401, /base64/);
    });
    it('a principal without an app role is a 403', async () => {
      const header = Buffer.from(JSON.stringify({ claims: [{ typ: 'roles', val: 'Owner' }] })).toString('base64');
      await expectUnchanged(() => create(body(), { header }), 403, /no role/);
    });
    it('contributors and viewers cannot create connections', async () => {
      await expectUnchanged(() => create(body(), 'Contributor'), 403, /Admin/);
      await expectUnchanged(() => create(body(), 'Viewer'), 403, /Admin/);
    });
    it('contributors see only shared connections, as {id, displayName, type}', async () => {
      const shared = await create(body({ allowContributors: true }));
      const hidden = await create(body({ allowContributors: false }));
      const res = await list('Contributor');
      expect(res.status).toBe(200);
      for (const c of res.body.value) expect(Object.keys(c).sort()).toEqual(['displayName', 'id', 'type']);
      const ids = res.body.value.map((c: any) => c.id);
      expect(ids).toContain(shared.body.id);
      expect(ids).not.toContain(hidden.body.id);
      expect((await item('GET', hidden.body.id, { as: 'Contributor' })).status).toBe(404);
      expect((await item('GET', shared.body.id, { as: 'Contributor' })).body).toEqual({
        id: shared.body.id,
        displayName: shared.body.displayName,
        type: 'Braze',
        etag: expect.any(String),
      });
    });
    it('a contributor cannot patch or delete a connection', async () => {
      const shared = await create(body({ allowContributors: true }));
      await expectUnchanged(
        () => item('PATCH', shared.body.id, { body: { displayName: 'mine' }, as: 'Contributor' }),
        403,
        /Admin/,
      );
      await expectUnchanged(() => item('DELETE', shared.body.id, { as: 'Contributor' }), 403, /Admin/);
    });
    it('viewers cannot list connections', async () => {
      expect((await list('Viewer')).status).toBe(403);
    });
  });
});
