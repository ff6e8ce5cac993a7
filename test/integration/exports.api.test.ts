import { beforeAll, describe, expect, it } from 'vitest';
import { connectionItem } from '../../functions/connectionItem';
import { connectionsCollection } from '../../functions/connectionsCollection';
import { exportDetach } from '../../functions/exportDetach';
import { exportDuplicate } from '../../functions/exportDuplicate';
import { exportItem } from '../../functions/exportItem';
import { exportsCollection } from '../../functions/exportsCollection';
import { call, resourceClient, useAzurite } from '../helpers/app';

useAzurite();

let shared: string;
let unshared: string;

beforeAll(async () => {
  const mk = async (displayName: string, allowContributors: boolean) =>
    (
      await call(connectionsCollection, {
        method: 'POST',
        path: 'connections',
        as: 'Admin',
        body: {
          displayName,
          restEndpoint: 'rest.fra-02.braze.eu',
          apiKey: 'key-000000000000abcd',
          allowContributors,
          consent: true,
        },
      })
    ).body.id as string;
  shared = await mk('Shared', true);
  unshared = await mk('Admins only', false);
});

const exportBody = (over: Record<string, unknown> = {}) => ({
  name: 'High value customers to Braze',
  connectionId: shared,
  brazeSegmentApiId: '0000-0000-0000',
  source: { container: 'dynamics365customerinsights', folder: 'CustomerInsights_abc/BrazeExport' },
  segments: ['HighValueSegment', 'ChurnRisk'],
  matching: {
    profileId: 'CustomerId',
    email: 'PrimaryEmail',
    brazeCustomerId: 'BrazeUserId',
    phone: 'Telephone',
    attributes: { first_name: 'FirstName', last_name: 'LastName' },
  },
  membership: { attribute: '0000-0000-0000' },
  schedule: { enabled: true },
  ...over,
});

const { create, list, item, expectUnchanged } = resourceClient(exportsCollection, exportItem, 'exports');

describe('exports API', () => {
  it('creates an export with the DESIGN.md body and defaults, without running it', async () => {
    const res = await create(exportBody());
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      ...exportBody(),
      matching: { ...exportBody().matching, aliasLabel: 'ci_customer_id' },
      membership: { attribute: '0000-0000-0000', format: 'list' },
      status: 'active',
      lastRun: null,
    });
    const got = await item('GET', res.body.id, { as: 'Viewer' });
    expect(got.status).toBe(200);
    expect(got.body.name).toBe('High value customers to Braze');
  });

  it('patches fields, revalidating the whole definition, with ETags', async () => {
    const c = await create(exportBody());
    const res = await item('PATCH', c.body.id, {
      body: { segments: ['ChurnRisk'], schedule: { enabled: false, cron: '0 0 2 * * *' } },
      headers: { 'if-match': c.body.etag },
    });
    expect(res.status).toBe(200);
    expect(res.body.segments).toEqual(['ChurnRisk']);
    expect(res.body.schedule).toEqual({ enabled: false, cron: '0 0 2 * * *' });
    const stale = await item('PATCH', c.body.id, { body: { name: 'stale' }, headers: { 'if-match': c.body.etag } });
    expect(stale.status).toBe(412);
    expect((await item('GET', c.body.id)).body.name).toBe(c.body.name);
  });

  it('duplicates with the schedule off, and detaches keeping the export inactive', async () => {
    const c = await create(exportBody());
    const dup = await call(exportDuplicate, {
      method: 'POST',
      path: `exports/${c.body.id}/duplicate`,
      params: { id: c.body.id },
      as: 'Contributor',
    });
    expect(dup.status).toBe(201);
    expect(dup.body.id).not.toBe(c.body.id);
    expect(dup.body.name).toBe(`${c.body.name} (copy)`);
    expect(dup.body.schedule.enabled).toBe(false);
    expect(dup.body.segments).toEqual(c.body.segments);
    const det = await call(exportDetach, { method: 'POST', path: `exports/${c.body.id}/detach`, params: { id: c.body.id } });
    expect(det.status).toBe(200);
    expect(det.body).toMatchObject({ connectionId: null, status: 'inactive', schedule: { enabled: false } });
    // Re-attaching makes it active again.
    const again = await item('PATCH', c.body.id, { body: { connectionId: shared } });
    expect(again.body).toMatchObject({ connectionId: shared, status: 'active' });
  });

  it('deletes an export', async () => {
    const c = await create(exportBody());
    expect((await item('DELETE', c.body.id)).status).toBe(204);
    expect((await item('GET', c.body.id)).status).toBe(404);
  });

  it('refuses to delete a connection that exports use, naming them', async () => {
    const conn = await call(connectionsCollection, {
      method: 'POST',
      path: 'connections',
      body: { displayName: 'In use', restEndpoint: 'rest.iad-01.braze.com', apiKey: 'key-111111111111abcd', consent: true },
    });
    const e = await create(exportBody({ name: 'Uses it', connectionId: conn.body.id }));
    const del = await call(connectionItem, {
      method: 'DELETE',
      path: `connections/${conn.body.id}`,
      params: { id: conn.body.id },
    });
    expect(del.status).toBe(409);
    expect(del.body.error.message).toContain('"Uses it"');
    expect(del.body.error.exports).toEqual([{ id: e.body.id, name: 'Uses it' }]);
    expect((await call(connectionItem, { method: 'GET', path: 'x', params: { id: conn.body.id } })).status).toBe(200);
    await call(exportDetach, { method: 'POST', path: 'x', params: { id: e.body.id } });
    expect((await call(connectionItem, { method: 'DELETE', path: 'x', params: { id: conn.body.id } })).status).toBe(204);
  });

  describe('validation names each bad field', () => {
    it.each<[string, Record<string, unknown>, string]>([
      ['unknown connection', { connectionId: '00000000-0000-4000-8000-000000000000' }, 'connectionId'],
      ['empty segment list', { segments: [] }, 'segments'],
      ['repeated segment', { segments: ['A', 'A'] }, 'segments'],
      ['missing email column', { matching: { brazeCustomerId: 'BrazeUserId' } }, 'matching.email'],
      ['missing Braze customer ID column', { matching: { email: 'PrimaryEmail' } }, 'matching.brazeCustomerId'],
      ['invalid cron', { schedule: { enabled: true, cron: '0 0 25 * * *' } }, 'schedule.cron'],
      ['five-field cron', { schedule: { enabled: true, cron: '*/5 * * * *' } }, 'schedule.cron'],
      ['bad container', { source: { container: 'Bad_Container', folder: 'x' } }, 'source.container'],
      ['folder escaping upward', { source: { container: 'abc', folder: 'a/../../b' } }, 'source.folder'],
      ['empty name', { name: '  ' }, 'name'],
      [
        'reserved attribute',
        { matching: { email: 'E', brazeCustomerId: 'B', attributes: { external_id: 'X' } } },
        'matching.attributes.external_id',
      ],
      ['unknown field', { colour: 'red' }, 'colour'],
      ['wrong type', { segments: 'HighValueSegment' }, 'segments'],
    ])('%s', async (_label, over, path) => {
      const res = await expectUnchanged(() => create(exportBody(over)), 400, new RegExp(path.replace(/\./g, '\\.')));
      expect(res.body.error.issues.map((i: any) => i.path)).toContain(path);
    });

    it('malformed JSON is a 400', async () => {
      await expectUnchanged(
        () => call(exportsCollection, { method: 'POST', path: 'exports', rawBody: '[1,' }),
        400,
        /not valid JSON/,
      );
    });
    it('an empty PATCH is a 400', async () => {
      const c = await create(exportBody());
      await expectUnchanged(() => item('PATCH', c.body.id, { body: {} }), 400, /at least one field/);
    });
  });

  describe('roles', () => {
    it('a viewer can list and read exports but gets 403 on create, patch and delete', async () => {
      const c = await create(exportBody());
      expect((await list('Viewer')).status).toBe(200);
      await expectUnchanged(() => create(exportBody(), 'Viewer'), 403, /Viewer/);
      await expectUnchanged(() => item('PATCH', c.body.id, { body: { name: 'x' }, as: 'Viewer' }), 403, /Viewer/);
      await expectUnchanged(() => item('DELETE', c.body.id, { as: 'Viewer' }), 403, /Viewer/);
    });
    it('a contributor creates exports on shared connections only', async () => {
      expect((await create(exportBody(), 'Contributor')).status).toBe(201);
      const res = await expectUnchanged(() => create(exportBody({ connectionId: unshared }), 'Contributor'), 400, /not shared/);
      expect(res.body.error.issues[0].path).toBe('connectionId');
    });
    it('a contributor cannot manage or re-point an export on an unshared connection', async () => {
      const adminOnly = await create(exportBody({ connectionId: unshared }));
      await expectUnchanged(
        () => item('PATCH', adminOnly.body.id, { body: { name: 'mine' }, as: 'Contributor' }),
        403,
        /not shared/,
      );
      await expectUnchanged(() => item('DELETE', adminOnly.body.id, { as: 'Contributor' }), 403, /not shared/);
      const mine = await create(exportBody(), 'Contributor');
      await expectUnchanged(
        () => item('PATCH', mine.body.id, { body: { connectionId: unshared }, as: 'Contributor' }),
        400,
        /not shared/,
      );
    });
  });

  describe('attribute names never collide', () => {
    it.each([
      [
        'membership.attribute is a standard field',
        { membership: { attribute: 'email' } },
        'membership.attribute',
        /email.*standard Braze profile field/,
      ],
      [
        'membership.attribute is an identifier',
        { membership: { attribute: 'external_id' } },
        'membership.attribute',
        /identifier/,
      ],
      [
        'the default from brazeSegmentApiId is a standard field',
        { brazeSegmentApiId: 'country', membership: { format: 'list' } },
        'brazeSegmentApiId',
        /country.*membership\.attribute/,
      ],
      [
        'membership.attribute is also a mapped attribute',
        { membership: { attribute: 'last_name' } },
        'membership.attribute',
        /standard Braze profile field/,
      ],
      [
        'membership.attribute is a mapped custom attribute',
        {
          membership: { attribute: 'tier' },
          matching: { profileId: 'CustomerId', email: 'E', brazeCustomerId: 'B', attributes: { tier: 'Tier' } },
        },
        'membership.attribute',
        /also matching\.attributes\.tier/,
      ],
      [
        'a boolean prefix + segment is a standard field',
        { segments: ['name', 'X'], membership: { format: 'boolean', booleanPrefix: 'first_' } },
        'membership.booleanPrefix',
        /first_name/,
      ],
      [
        'a boolean prefix + segment is a mapped attribute',
        {
          segments: ['A'],
          membership: { format: 'boolean', booleanPrefix: 'seg_' },
          matching: { profileId: 'CustomerId', email: 'E', brazeCustomerId: 'B', attributes: { seg_A: 'Col' } },
        },
        'membership.booleanPrefix',
        /seg_A.*matching\.attributes\.seg_A/,
      ],
      [
        'an empty prefix makes a segment a standard field',
        { segments: ['gender'], membership: { format: 'boolean', booleanPrefix: '' } },
        'segments.0',
        /gender/,
      ],
      [
        'a mapped attribute is an identifier',
        { matching: { profileId: 'CustomerId', email: 'E', brazeCustomerId: 'B', attributes: { braze_id: 'Col' } } },
        'matching.attributes.braze_id',
        /set by the export itself/,
      ],
    ])('%s: 400 naming the field, nothing saved', async (_case, over, path, message) => {
      const res = await expectUnchanged(() => create(exportBody(over)), 400, message);
      expect(res.body.error.issues).toEqual([expect.objectContaining({ path })]);
    });

    it('a PATCH that would make a collision is refused too', async () => {
      const c = await create(exportBody());
      const res = await expectUnchanged(
        () => item('PATCH', c.body.id, { body: { membership: { attribute: 'phone' } } }),
        400,
        /standard Braze profile field/,
      );
      expect(res.body.error.issues).toEqual([expect.objectContaining({ path: 'membership.attribute' })]);
    });
  });
});
