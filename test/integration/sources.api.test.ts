// Source discovery: the CI export folders an export can read, and each one's segments and columns,
// so data matching is picked from what is there. On Azurite, with CI-layout exports.
import { describe, expect, it } from 'vitest';
import { sourceSegments, sourcesList } from '../../functions/sources';
import { services } from '../../shared/services';
import { call, useAzurite } from '../helpers/app';
import { CONTAINER, COLUMNS, rows, writeCiExport } from '../helpers/ci-export';

useAzurite();

describe('source discovery API', () => {
  it('lists the export folders that hold a model.json, and describes one: segments, columns, types, partitions, size', async () => {
    const blobs = services().storage.ciBlobs;
    const withModel = await writeCiExport(blobs, [
      { segment: 'HighValue', partitions: [rows(3), rows(2, { from: 4 })] },
      { segment: 'ChurnRisk', columns: [...COLUMNS, { name: 'LifetimeValue', dataType: 'int64' }], partitions: [rows(1)] },
    ]);
    const header = COLUMNS.map((c) => c.name).join(',');
    const noModel = await writeCiExport(blobs, [{ segment: 'Newsletter', partitions: [`${header}\n${rows(2)}`] }], {
      withModel: false,
    });

    const list = await call(sourcesList, { method: 'GET', path: 'sources', as: 'Contributor' });
    expect(list.status).toBe(200);
    expect(list.body.folders).toContainEqual({
      container: CONTAINER,
      folder: withModel.folder,
      modifiedTime: expect.any(String),
    });
    expect(list.body.folders.map((f: { folder: string }) => f.folder)).not.toContain(noModel.folder);

    const described = await call(sourceSegments, {
      method: 'GET',
      path: 'sources/segments',
      as: 'Admin',
      query: { container: CONTAINER, folder: withModel.folder },
    });
    expect(described.status).toBe(200);
    expect(described.body.source).toBe('model.json');
    const high = described.body.segments.find((s: { name: string }) => s.name === 'HighValue');
    expect(high).toMatchObject({ partitions: 2, columns: COLUMNS });
    expect(high.sizeBytes).toBe(Buffer.byteLength(rows(3)) + Buffer.byteLength(rows(2, { from: 4 })));
    expect(described.body.segments.find((s: { name: string }) => s.name === 'ChurnRisk').columns).toContainEqual({
      name: 'LifetimeValue',
      dataType: 'int64',
      samples: [],
    });

    // Without model.json, the newest CSV's header row names the columns.
    const headerOnly = await call(sourceSegments, {
      method: 'GET',
      path: 'sources/segments',
      as: 'Admin',
      query: { container: CONTAINER, folder: noModel.folder },
    });
    expect(headerOnly.body).toMatchObject({
      source: 'header rows',
      segments: [{ name: 'Newsletter', partitions: 1, columns: COLUMNS.map((c) => ({ name: c.name })) }],
    });
  });

  it('same role rules as creating an export: a Viewer gets 403; a bad container or folder is a 400 naming it', async () => {
    expect((await call(sourcesList, { method: 'GET', path: 'sources', as: 'Viewer' })).status).toBe(403);
    const bad = await call(sourceSegments, {
      method: 'GET',
      path: 'sources/segments',
      as: 'Admin',
      query: { container: 'Bad_Name', folder: '../x' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(['container', 'folder']);
  });
});
