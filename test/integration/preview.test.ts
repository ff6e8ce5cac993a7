// Preview (dry run): what the next run would do and cost, sending nothing and writing nothing.
import { beforeEach, describe, expect, it } from 'vitest';
import { exportPreview } from '../../functions/exportPreview';
import { services } from '../../shared/services';
import { CONTAINERS } from '../../shared/store/clients';
import { call, useAzurite } from '../helpers/app';
import { rows, type TableSpec } from '../helpers/ci-export';
import { ADMIN, mutableExport as mutableExportAt, runNow, useSandbox } from '../helpers/engine';
import { dataPointsOf, maskEmail, maskPhone } from '../../shared/preview/data-points';

useAzurite();
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

const mutableExport = (tables: TableSpec[], over: Record<string, unknown> = {}) => mutableExportAt(sandbox().url, tables, over);

/** Everything the export has in the app's storage that a preview could touch: state blobs with ETags, and runs. */
async function traces(exportId: string) {
  const app = services();
  const blobs: string[] = [];
  for await (const b of app.storage.appBlobs.getContainerClient(CONTAINERS.state).listBlobsFlat({ prefix: `${exportId}/` }))
    blobs.push(`${b.name} ${b.properties.etag}`);
  const runs = (await app.runs.listForExport(exportId)).map((r) => `${r.id} ${r.status}`);
  return { blobs, runs, status: await app.exports.view((await app.exports.get(exportId)).value) };
}

async function preview(exportId: string, who: 'Admin' | 'Viewer' = 'Admin', body: unknown = {}) {
  return call(exportPreview, { method: 'POST', path: `exports/${exportId}/preview`, params: { id: exportId }, body, as: who });
}

const BAD_ROW = ',,nobody@example.com,Nobody\n';

describe('POST /api/exports/{id}/preview', () => {
  it('on a first run: every profile is new; nothing is sent or written; the run then does exactly what it said', async () => {
    const { exp } = await mutableExport([
      { segment: 'A', partitions: [rows(100) + BAD_ROW] },
      { segment: 'B', partitions: [rows(40, { from: 81 })] },
    ]);
    const before = await traces(exp.id);
    const res = await preview(exp.id);
    expect(res.status).toBe(200);
    const p = res.body as any;
    expect(p.profiles).toEqual({ total: 121, new: 120, changed: 0, unchanged: 0, leaving: 0, rejected: 1 });
    expect(p.rowsRead).toBe(141);
    expect(p.rejectedRows.total).toBe(1);
    expect(p.rejectedRows.first[0].reason).toMatch(/no usable identifier/);
    expect(p.objects).toBe(120);
    // email, first_name and the membership list: three data points each; identifiers are free.
    expect(p.dataPoints).toBe(360);
    expect(p.newToBraze.profiles).toBe(120);
    expect(p.samples).toHaveLength(10);
    for (const s of p.samples) expect(JSON.stringify(s)).not.toMatch(/p\d+@example\.com/);
    expect(p.samples.some((s: any) => /^p•+@example\.com$/.test(s.email))).toBe(true);
    // Two requests at the connection's budget: well under a second of sending. The whole estimate
    // adds the preview's own reading time, as measured (a cold engine thread on a loaded machine
    // can take a second), and says it in words.
    expect(p.estimate).toMatchObject({ limitedBy: 'requestBudget' });
    expect(p.estimate.sendingSeconds).toBeLessThan(0.1);
    expect(p.estimate.text).toMatch(p.estimate.seconds < 1 ? /^under a second$/ : /^(under a second|about \d+ s)$/);
    expect(p.estimate.requestsPerSecond).toBeGreaterThan(0);
    expect(sandbox().stats.requests).toBe(0);
    expect(await traces(exp.id)).toEqual(before);

    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({
      profiles: p.profiles.total,
      sent: p.profiles.new + p.profiles.changed,
      unchanged: 0,
      removed: 0,
      rejected: 1,
      newProfiles: 120,
    });
    expect(run.requests!.sent).toBe(p.requests);
    expect(sandbox().stats.objectsProcessed).toBe(p.objects);
  });

  it('after a change: new, changed, unchanged and leaving profiles are told apart and match the next run', async () => {
    const { exp, rewrite } = await mutableExport([{ segment: 'S', partitions: [rows(50)] }]);
    await runNow(exp.id);
    await rewrite([
      {
        segment: 'S',
        partitions: [
          rows(50).replace('p7@example.com', 'new7@example.com').replace('c9,u9,p9@example.com,Name9\n', '') +
            rows(2, { from: 51 }),
        ],
      },
    ]);
    const before = await traces(exp.id);
    const requestsBefore = sandbox().stats.requests;
    const p = (await preview(exp.id)).body as any;
    expect(p.profiles).toEqual({ total: 51, new: 2, changed: 1, unchanged: 48, leaving: 1, rejected: 0 });
    // Three profiles sent whole (3 data points each) and one leaver's membership set to null (1).
    expect(p.dataPoints).toBe(10);
    expect(p.objects).toBe(4);
    expect(p.samples.map((s: any) => s.email ?? null)).toContain('n•••@example.com'); // new7: its length kept
    expect(sandbox().stats.requests).toBe(requestsBefore);
    expect(await traces(exp.id)).toEqual(before);

    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ profiles: 51, sent: 3, unchanged: 48, removed: 1, rejected: 0, newProfiles: 2 });
    expect(run.requests!.sent).toBe(p.requests);

    // Nothing changed since that run: the preview says so, at no cost.
    const again = (await preview(exp.id)).body as any;
    expect(again.profiles).toMatchObject({ new: 0, changed: 0, unchanged: 51, leaving: 0 });
    expect(again).toMatchObject({ requests: 0, dataPoints: 0, samples: [] });
  });

  it('one preview of an export at a time: a second one meanwhile is told to wait', async () => {
    const { exp } = await mutableExport([{ segment: 'S', partitions: [rows(200)] }]);
    const [a, b] = await Promise.all([preview(exp.id), preview(exp.id)]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    expect((await preview(exp.id)).status).toBe(200);
  });

  it('fullSync previews resending everything', async () => {
    const { exp } = await mutableExport([{ segment: 'S', partitions: [rows(20)] }]);
    await runNow(exp.id);
    const p = (await preview(exp.id, 'Admin', { fullSync: true })).body as any;
    expect(p.profiles).toMatchObject({ total: 20, new: 0, changed: 20, unchanged: 0 });
    expect(p.fullSync).toBe(true);
  });

  it('is refused to a Viewer, and to a detached export; a bad option names its field', async () => {
    const { exp } = await mutableExport([{ segment: 'S', partitions: [rows(3)] }]);
    expect((await preview(exp.id, 'Viewer')).status).toBe(403);
    const bad = await preview(exp.id, 'Admin', { fullSync: 'yes' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('fullSync');
    await services().exports.detach(ADMIN, exp.id, null, true);
    const detached = await preview(exp.id);
    expect(detached.status).toBe(409);
  });
});

describe('data points and masking', () => {
  it('counts every attribute set (an array or a null is one) and no identifier', () => {
    expect(dataPointsOf({ external_id: 'u1', email: 'a@b.c', segs: ['A', 'B', 'C'], gone: null })).toBe(3);
    expect(
      dataPointsOf({
        user_alias: { alias_name: 'c1', alias_label: 'ci' },
        _update_existing_only: false,
        email_subscribe: 'opted_in',
      }),
    ).toBe(0);
  });

  it('masks e-mail local parts and all but the last two digits of a phone', () => {
    expect(maskEmail('jane.doe@example.com')).toBe('j•••••••@example.com');
    expect(maskPhone('+1 (555) 010-2030')).toBe('+• (•••) •••-••30');
  });
});
