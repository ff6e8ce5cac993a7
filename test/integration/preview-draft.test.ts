// "Preview draft": an export definition previewed before it is saved — a new one as its first run
// (POST /api/exports/preview, the body POST /api/exports takes), an edited one against the export's
// sync state (POST /api/exports/{id}/preview with `definition`). Same figures as a saved export's
// preview; nothing saved, run, written or sent. On Azurite, with the Braze sandbox.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportDraftPreview } from '../../functions/exportDraftPreview';
import { exportPreview } from '../../functions/exportPreview';
import { PREVIEW_LIMITS, takePreviewSlot } from '../../shared/preview/preview-slots';
import { services } from '../../shared/services';
import { CONTAINERS, TABLES } from '../../shared/store/clients';
import { call, useAzurite, type Who } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { ADMIN, createConnection, createExport, mutableExport, runNow, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());
const release: (() => void)[] = [];
afterEach(() => release.splice(0).forEach((r) => r()));

/** Everything the app keeps: every table row and every blob of its own containers, with ETags. */
async function appTraces(): Promise<string[]> {
  const app = services();
  const out: string[] = [];
  for (const table of Object.values(TABLES))
    for await (const e of app.storage.table(table).listEntities()) out.push(`${table} ${e.partitionKey} ${e.rowKey} ${e.etag}`);
  for (const container of Object.values(CONTAINERS))
    for await (const b of app.storage.appBlobs.getContainerClient(container).listBlobsFlat())
      out.push(`${container} ${b.name} ${b.properties.etag}`);
  return out.sort();
}

const draftPreview = (body: unknown, as: Who = 'Admin') =>
  call(exportDraftPreview, { method: 'POST', path: 'exports/preview', body, as });
const savedPreview = (id: string, body: unknown = {}, as: Who = 'Admin') =>
  call(exportPreview, { method: 'POST', path: `exports/${id}/preview`, params: { id }, body, as });

/** A new export's body, as the console's form sends it to POST /api/exports. */
async function newDraft(over: Record<string, unknown> = {}) {
  const source = await writeCiExport(services().storage.ciBlobs, [
    { segment: 'A', partitions: [rows(60) + ',,nobody@example.com,Nobody\n'] },
    { segment: 'B', partitions: [rows(30, { from: 41 })] },
  ]);
  const connection = await createConnection(sandbox().url, over);
  return {
    name: 'Draft export',
    connectionId: connection.id,
    brazeSegmentApiId: 'seg-draft',
    source,
    segments: ['A', 'B'],
    matching: MATCHING,
    schedule: { enabled: true },
  };
}

/** What a preview says a run would do and cost (its timings and who asked left out). */
const figures = (p: any) => ({
  snapshot: p.snapshot,
  rowsRead: p.rowsRead,
  profiles: p.profiles,
  rejectedRows: p.rejectedRows,
  requests: p.requests,
  objects: p.objects,
  dataPoints: p.dataPoints,
  newToBraze: p.newToBraze,
  samples: p.samples,
  omittedAttributes: p.omittedAttributes,
  warnings: p.warnings,
});

describe('POST /api/exports/preview (a new export, not saved)', () => {
  it('answers what the saved export’s preview answers; no export, no run, nothing written, nothing sent', async () => {
    const draft = await newDraft();
    const before = await appTraces();
    const res = await draftPreview(draft);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.exportId).toBeNull();
    expect(res.body.profiles).toEqual({ total: 71, new: 70, changed: 0, unchanged: 0, leaving: 0, rejected: 1 });
    expect(await appTraces()).toEqual(before);
    expect((await services().exports.listViews()).map((e) => e.name)).not.toContain('Draft export');
    expect(sandbox().stats.requests).toBe(0);
    expect(sandbox().stats.connections).toBe(0);

    const saved = (await services().exports.create(ADMIN, draft)).value;
    const preview = await savedPreview(saved.id);
    expect(preview.status).toBe(200);
    expect(figures(res.body)).toEqual(figures(preview.body));
    expect(res.body.rowsRead).toBe(91);
    expect(res.body.dataPoints).toBeGreaterThan(0);
  });

  it('a bad body is a 400 naming the field; a Viewer gets 403; a Contributor needs a shared connection', async () => {
    const draft = await newDraft();
    const shared = await newDraft({ allowContributors: true });
    const before = await appTraces();
    const { email: _email, ...noEmail } = MATCHING;
    const bad = await draftPreview({ ...draft, matching: noEmail, segments: [] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(['matching.email', 'segments']);
    const unknown = await draftPreview({ ...draft, fullSync: true });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.issues).toEqual([{ path: 'fullSync', message: 'is not a known field' }]);

    expect((await draftPreview(draft, 'Viewer')).status).toBe(403);
    const unshared = await draftPreview(draft, 'Contributor');
    expect(unshared.status).toBe(400);
    expect(unshared.body.error.issues[0].path).toBe('connectionId');
    expect((await draftPreview(shared, 'Contributor')).status).toBe(200);
    expect(sandbox().stats.requests).toBe(0);
    expect(await appTraces()).toEqual(before);
  });

  it('shows no raw text of a rejected row’s profile ID, whatever column a Contributor points it at', async () => {
    const notes = `diagnosed HIV+ Jane Roe, lives at 1 Elm Street ${'x'.repeat(520)}`;
    const source = await writeCiExport(services().storage.ciBlobs, [
      { segment: 'A', partitions: [rows(3) + `c9,u9,p9@example.com,"${notes}"\n`] },
    ]);
    const draft = { ...(await newDraft({ allowContributors: true })), source, segments: ['A'] };
    const res = await draftPreview({ ...draft, matching: { ...MATCHING, profileId: 'FirstName' } }, 'Contributor');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.rejectedRows.total).toBe(1);
    const [row] = res.body.rejectedRows.first;
    expect(row.reason).toMatch(/longer than 512/);
    expect(row.profileId).toBe('d' + '•'.repeat(63));
    for (const raw of ['HIV', 'Jane', 'Elm']) expect(JSON.stringify(res.body)).not.toContain(raw);
  });

  it('takes a preview slot like any preview: 429 when the instance has none free', async () => {
    const draft = await newDraft();
    for (let i = 0; i < PREVIEW_LIMITS.perInstance; i++) release.push(takePreviewSlot()!);
    const refused = await draftPreview(draft);
    expect(refused.status).toBe(429);
    release.pop()!();
    expect((await draftPreview(draft)).status).toBe(200);
  });
});

describe('POST /api/exports/{id}/preview with an edited definition', () => {
  it('is diffed against the export’s sync state; the export is not changed', async () => {
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'S', partitions: [rows(40)] }]);
    await runNow(exp.id);
    sandbox().reset();
    const elsewhere = await createConnection(sandbox().url);
    const {
      id: _id,
      status: _status,
      createdAt: _createdAt,
      createdBy: _createdBy,
      createdByPrincipal: _createdByPrincipal,
      updatedAt: _updatedAt,
      updatedBy: _updatedBy,
      updatedByPrincipal: _updatedByPrincipal,
      ...definition
    } = exp;
    const before = await appTraces();

    const same = await savedPreview(exp.id, { definition });
    expect(same.status, JSON.stringify(same.body)).toBe(200);
    expect(same.body).toMatchObject({ exportId: exp.id, profiles: { total: 40, unchanged: 40, changed: 0, new: 0 } });
    // One more mapped attribute: every profile changes, none is new.
    const edited = { ...definition, matching: { ...MATCHING, attributes: { ...MATCHING.attributes, nickname: 'FirstName' } } };
    const changed = await savedPreview(exp.id, { definition: edited });
    expect(changed.body.profiles).toMatchObject({ total: 40, changed: 40, unchanged: 0, new: 0 });
    expect(changed.body.samples[0]).toHaveProperty('nickname');
    // Moved to another connection (another Braze workspace): a first run there.
    const moved = await savedPreview(exp.id, { definition: { ...definition, connectionId: elsewhere.id } });
    expect(moved.body.profiles).toMatchObject({ total: 40, new: 40, unchanged: 0 });

    expect(await appTraces()).toEqual(before);
    expect(sandbox().stats.requests).toBe(0);

    const bad = await savedPreview(exp.id, { definition: { ...definition, brazeSegmentApiId: 'not valid!' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: { path: string }) => i.path)).toEqual(['definition.brazeSegmentApiId']);
    expect((await savedPreview(exp.id, { definition }, 'Viewer')).status).toBe(403);
  });

  it('loads the export and checks the caller before the draft: 404 / 403 first; a stale If-Match is a 412', async () => {
    const shared = await createConnection(sandbox().url, { allowContributors: true });
    const source = await writeCiExport(services().storage.ciBlobs, [{ segment: 'S', partitions: [rows(5)] }]);
    const exp = await createExport(shared.id, { source, segments: ['S'], matching: MATCHING });
    const { exp: unshared } = await mutableExport(sandbox().url, [{ segment: 'S', partitions: [rows(5)] }]);
    const definition = {
      name: 'Edited',
      connectionId: shared.id,
      brazeSegmentApiId: 'seg-edit',
      source,
      segments: ['S'],
      matching: MATCHING,
    };
    const bad = { ...definition, brazeSegmentApiId: 'not valid!' };

    const unknown = await savedPreview('00000000-0000-4000-8000-000000000000', { definition: bad });
    expect(unknown.status, JSON.stringify(unknown.body)).toBe(404);
    const notTheirs = await savedPreview(unshared.id, { definition: bad }, 'Contributor');
    expect(notTheirs.status, JSON.stringify(notTheirs.body)).toBe(403);
    expect(notTheirs.body.error.message).toMatch(/not shared/);
    const guarded = await savedPreview(exp.id, { definition: { ...definition, guard: exp.guard } }, 'Contributor');
    expect(guarded.status).toBe(403);
    expect(guarded.body.error.message).toMatch(/^definition\.guard: /);
    expect((await savedPreview(exp.id, { definition }, 'Contributor')).status).toBe(200);

    const before = await services().exports.update(ADMIN, exp.id, { name: 'Renamed once' }, null);
    const after = await services().exports.update(ADMIN, exp.id, { name: 'Renamed twice' }, null);
    const ifMatch = (etag: string) =>
      call(exportPreview, {
        method: 'POST',
        path: `exports/${exp.id}/preview`,
        params: { id: exp.id },
        body: { definition },
        headers: { 'if-match': etag },
      });
    expect((await ifMatch(before.etag)).status).toBe(412);
    expect((await ifMatch(after.etag)).status).toBe(200);
  });
});
