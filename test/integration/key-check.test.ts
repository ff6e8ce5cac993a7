// The key is checked when a connection is saved and on demand, against the sandbox that answers
// as Braze does — and the check writes nothing to any profile.
import { beforeEach, describe, expect, it } from 'vitest';
import { connectionItem } from '../../functions/connectionItem';
import { connectionsCollection } from '../../functions/connectionsCollection';
import { connectionSegments } from '../../functions/connectionSegments';
import { connectionTest } from '../../functions/connectionTest';
import {
  SANDBOX_KEY,
  SANDBOX_KEY_WITHOUT_EXPORT,
  SANDBOX_KEY_WITHOUT_SEGMENTS_LIST,
  SANDBOX_KEY_WITHOUT_USERS_TRACK,
} from '../../scripts/braze-sandbox';
import { call, resourceClient, useAzurite } from '../helpers/app';
import { useSandbox } from '../helpers/engine';

useAzurite({ LOCAL_SKIP_KEY_CHECK: 'false' });
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

const { create, item, expectUnchanged } = resourceClient(connectionsCollection, connectionItem, 'connections');
let n = 0;
const body = (over: Record<string, unknown> = {}) => ({
  displayName: `Checked ${++n}`,
  restEndpoint: sandbox().url,
  apiKey: SANDBOX_KEY,
  consent: true,
  ...over,
});
const test = (id: string, as: 'Admin' | 'Contributor' = 'Admin') =>
  call(connectionTest, { method: 'POST', path: `connections/${id}/test`, params: { id }, as });

describe('Braze key check', () => {
  it('a valid key is saved with its check; no profile was touched', async () => {
    const res = await create(body());
    expect(res.status).toBe(201);
    expect(res.body.keyCheck).toMatchObject({ result: 'valid' });
    expect(sandbox().stats.requests).toBe(1);
    expect(sandbox().stats.objectsProcessed).toBe(0);
    expect(sandbox().profiles.size).toBe(0);
  });

  it('reports which export permissions verification can use; a key without them is still saved', async () => {
    const full = await create(body());
    expect(full.body.keyCheck.exportPermissions).toEqual({ 'users.export.segment': true, 'users.export.ids': true });
    const trackOnly = await create(body({ apiKey: SANDBOX_KEY_WITHOUT_EXPORT }));
    expect(trackOnly.status).toBe(201);
    expect(trackOnly.body.keyCheck).toMatchObject({
      result: 'valid',
      exportPermissions: { 'users.export.segment': false, 'users.export.ids': false },
    });
    expect(trackOnly.body.keyCheck.detail).toMatch(/lacks users\.export\.segment and users\.export\.ids/);
    expect(sandbox().exports.exportsRequested).toBe(0); // asking started no export
  });

  it('an unknown key is a 400 on apiKey saying Braze rejected it; nothing is saved', async () => {
    await expectUnchanged(() => create(body({ apiKey: 'not-a-braze-key-123' })), 400, /apiKey.*rejected the key \(401\)/);
  });

  it('a key without users.track is a 400 on apiKey naming the permission; nothing is saved', async () => {
    await expectUnchanged(() => create(body({ apiKey: SANDBOX_KEY_WITHOUT_USERS_TRACK })), 400, /apiKey.*403.*users\.track/);
  });

  it('a key that cannot be checked (Braze unreachable) is saved, marked unverified', async () => {
    const res = await create(body({ restEndpoint: 'http://127.0.0.1:9' }));
    expect(res.status).toBe(201);
    expect(res.body.keyCheck).toMatchObject({ result: 'unverified', detail: expect.stringMatching(/could not be reached/) });
  });

  it('POST …/test tells a valid key from a revoked one and keeps the answer; Admin only', async () => {
    const c = await create(body());
    expect((await test(c.body.id)).body).toMatchObject({ result: 'valid' });
    sandbox().setFaults({ revokeKey: true });
    const revoked = await test(c.body.id);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ result: 'invalid', detail: expect.stringMatching(/revoked/) });
    expect((await item('GET', c.body.id)).body.keyCheck).toMatchObject({ result: 'invalid' });
    expect((await test(c.body.id, 'Contributor')).status).toBe(403);
    expect(sandbox().stats.objectsProcessed).toBe(0);
  });

  it('rotating to a key Braze refuses is a 400 and keeps the old key', async () => {
    const c = await create(body());
    const res = await item('PATCH', c.body.id, { body: { apiKey: SANDBOX_KEY_WITHOUT_USERS_TRACK } });
    expect(res.status).toBe(400);
    expect(res.body.error.issues).toEqual([
      expect.objectContaining({ path: 'apiKey', message: expect.stringMatching(/users\.track/) }),
    ]);
    expect((await item('GET', c.body.id)).body.apiKey.hint).toBe(c.body.apiKey.hint);
  });
});

describe("the Braze workspace's segments, for the export form", () => {
  const segments = (id: string, as: 'Admin' | 'Contributor' | 'Viewer' = 'Admin') =>
    call(connectionSegments, { method: 'GET', path: `connections/${id}/segments`, params: { id }, as });

  it('lists them where the key may (segments.list), as Braze answers GET /segments/list', async () => {
    const c = await create(body({ allowContributors: true }));
    const res = await segments(c.body.id, 'Contributor');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      available: true,
      truncated: false,
      segments: [
        { id: '0000-0000-0000', name: 'CI: high value customers' },
        { id: '1111-1111-1111', name: 'CI: churn risk' },
      ],
    });
    expect((await segments(c.body.id, 'Viewer')).status).toBe(403);
  });

  it('says why not where the key may not: the field stays free text', async () => {
    const limited = await create(body({ apiKey: SANDBOX_KEY_WITHOUT_SEGMENTS_LIST }));
    expect(limited.status).toBe(201);
    expect((await segments(limited.body.id)).body).toEqual({
      available: false,
      reason: expect.stringMatching(/segments\.list permission/),
    });
    const c = await create(body());
    sandbox().setFaults({ revokeKey: true }); // the key was revoked since
    expect((await segments(c.body.id)).body).toEqual({ available: false, reason: expect.stringMatching(/401/) });
  });
});
