// The sandbox reads users back as Braze documents it: /users/export/segment (fields_to_export
// required, one export per segment at a time, a URL that answers 404 until ready, zip or gzip of
// JSON lines, users.export.segment) and /users/export/ids (≤ 50 ids, 40 requests/s with
// fields_to_export, users.export.ids). No Azurite: the Blob delivery is covered in verify.test.ts.
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { BrazeSandbox, SANDBOX_KEY, SANDBOX_KEY_WITHOUT_EXPORT } from '../../scripts/braze-sandbox';

const sandbox = new BrazeSandbox();
beforeAll(() => sandbox.start());
afterAll(() => sandbox.stop());
beforeEach(() => sandbox.reset());

const post = (path: string, body: unknown, key = SANDBOX_KEY) =>
  fetch(`${sandbox.url}${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });

async function seed() {
  const res = await post('/users/track', {
    attributes: [
      { external_id: 'u1', email: 'a@example.com', first_name: 'Ann', seg: ['A'] },
      { external_id: 'u2', first_name: 'Bo', seg: ['B'], vip: true },
      { user_alias: { alias_name: 'c3', alias_label: 'ci' }, _update_existing_only: false, seg: ['A', 'B'] },
      { external_id: 'u4', first_name: 'Out' },
    ],
  });
  expect(res.status).toBe(201);
  sandbox.exports.define({ id: 'in-a', filters: [{ attribute: 'seg', includes: 'A' }] });
  sandbox.exports.define({ id: 'vip', filters: [{ attribute: 'vip', isTrue: true }] });
}

/** As a client polls Braze's URL: until it stops answering 404 (the archive is made after the answer). */
async function whenReady(url: string): Promise<Response> {
  for (const deadline = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 50))) {
    const res = await fetch(url);
    if (res.status !== 404 || Date.now() > deadline) return res;
  }
}

function unzipLines(zip: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (err, file) => {
      if (err || !file) return reject(err);
      const lines: string[] = [];
      file.on('entry', (e: yauzl.Entry) =>
        file.openReadStream(e, (e2, s) => {
          if (e2 || !s) return reject(e2);
          const chunks: Buffer[] = [];
          s.on('data', (c: Buffer) => chunks.push(c));
          s.on('end', () => {
            lines.push(...Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean));
            file.readEntry();
          });
        }),
      );
      file.on('end', () => resolve(lines));
      file.readEntry();
    });
  });
}

describe('POST /users/export/segment', () => {
  it('answers an object_prefix and a URL that is 404 until the export is ready, then a zip of JSON lines', async () => {
    await seed();
    sandbox.exports.settings.readyAfterMs = 300;
    const res = await post('/users/export/segment', {
      segment_id: 'in-a',
      fields_to_export: ['external_id', 'user_aliases', 'custom_attributes', 'first_name'],
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { message: string; object_prefix: string; url: string };
    expect(body.message).toBe('success');
    expect(body.object_prefix).toMatch(/^[0-9a-f-]{36}-\d+$/);
    expect((await fetch(body.url)).status).toBe(404);
    // One export per segment at a time: Braze's answer to a second one.
    const second = await post('/users/export/segment', { segment_id: 'in-a', fields_to_export: ['external_id'] });
    expect(second.status).toBe(429);
    expect(((await second.json()) as { message: string }).message).toMatch(/already in progress/);
    const ready = await whenReady(body.url);
    expect(ready.status).toBe(200);
    const users = (await unzipLines(Buffer.from(await ready.arrayBuffer()))).map((l) => JSON.parse(l));
    expect(users).toEqual([
      { external_id: 'u1', first_name: 'Ann', custom_attributes: { seg: ['A'] } },
      { user_aliases: [{ alias_name: 'c3', alias_label: 'ci' }], custom_attributes: { seg: ['A', 'B'] } },
    ]);
    // Ready: the segment may be exported again.
    expect((await post('/users/export/segment', { segment_id: 'in-a', fields_to_export: ['email'] })).status).toBe(201);
  });

  it('gzip on request; boolean filters; only the fields asked for', async () => {
    await seed();
    sandbox.exports.settings.readyAfterMs = 0;
    const res = await post('/users/export/segment', {
      segment_id: 'vip',
      fields_to_export: ['external_id', 'email'],
      output_format: 'gzip',
    });
    const { url } = (await res.json()) as { url: string };
    const lines = gunzipSync(Buffer.from(await (await whenReady(url)).arrayBuffer()))
      .toString('utf8')
      .trim()
      .split('\n');
    expect(lines.map((l) => JSON.parse(l))).toEqual([{ external_id: 'u2' }]);
  });

  it('refuses as Braze does: no fields_to_export, unknown segment, no permission', async () => {
    await seed();
    expect((await post('/users/export/segment', { segment_id: 'in-a' })).status).toBe(400);
    expect((await post('/users/export/segment', { segment_id: 'nope', fields_to_export: ['email'] })).status).toBe(404);
    const refused = await post(
      '/users/export/segment',
      { segment_id: 'in-a', fields_to_export: ['email'] },
      SANDBOX_KEY_WITHOUT_EXPORT,
    );
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { message: string }).message).toMatch(/users\.export\.segment/);
  });
});

describe('POST /users/export/ids', () => {
  it('up to 50 ids a request, unknown ones listed, 40 requests/s with fields_to_export, users.export.ids', async () => {
    await seed();
    const res = await post('/users/export/ids', {
      external_ids: ['u1', 'nobody'],
      fields_to_export: ['external_id', 'first_name'],
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({
      message: 'success',
      users: [{ external_id: 'u1', first_name: 'Ann' }],
      invalid_user_ids: ['nobody'],
    });
    const tooMany = Array.from({ length: 51 }, (_, i) => `x${i}`);
    expect((await post('/users/export/ids', { external_ids: tooMany, fields_to_export: ['external_id'] })).status).toBe(400);
    expect((await post('/users/export/ids', { external_ids: ['u1'] }, SANDBOX_KEY_WITHOUT_EXPORT)).status).toBe(403);
    const statuses = await Promise.all(
      Array.from({ length: 45 }, () =>
        post('/users/export/ids', { external_ids: ['u1'], fields_to_export: ['external_id'] }).then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(4);
  });
});

describe('changes behind the app’s back', () => {
  it('edits a user, removes an attribute, makes a stranger', async () => {
    await seed();
    const edit = (body: unknown) => fetch(`${sandbox.url}/sandbox/users/edit`, { method: 'POST', body: JSON.stringify(body) });
    expect((await edit({ user: 'external_id:u1', set: { first_name: 'Edited' }, unset: ['seg'] })).status).toBe(200);
    expect(sandbox.profiles.get('external_id:u1')!.attributes).toEqual({ email: 'a@example.com', first_name: 'Edited' });
    expect((await edit({ user: 'external_id:ghost', set: { seg: ['A'] } })).status).toBe(404);
    expect((await edit({ user: 'external_id:ghost', set: { seg: ['A'] }, create: true })).status).toBe(200);
    expect(sandbox.profiles.get('external_id:ghost')!.identifier).toEqual({ external_id: 'ghost' });
  });
});
