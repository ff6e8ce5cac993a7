// Source discovery answers 4xx for what is not there or cannot be read, and bounds what one request
// may cost: probes, time and the size of model.json (as a run's reader does). On Azurite.
import { afterEach, describe, expect, it } from 'vitest';
import { sourceSegments, sourcesList } from '../../functions/sources';
import { services } from '../../shared/services';
import { DISCOVERY_LIMITS } from '../../shared/snapshot/discover';
import { call, useAzurite } from '../helpers/app';
import { rows, writeCiExport } from '../helpers/ci-export';

useAzurite();
const defaults = { ...DISCOVERY_LIMITS };
afterEach(() => Object.assign(DISCOVERY_LIMITS, defaults));

const describeFolder = (container: string, folder: string) =>
  call(sourceSegments, { method: 'GET', path: 'sources/segments', query: { container, folder } });

describe('source discovery edges', () => {
  it('a missing container is a 404 on both routes', async () => {
    const list = await call(sourcesList, { method: 'GET', path: 'sources', query: { container: 'no-such-container' } });
    expect(list.status).toBe(404);
    expect(list.body.error.message).toMatch(/no-such-container/);
    expect((await describeFolder('no-such-container', 'CustomerInsights_x/Export')).status).toBe(404);
  });

  it('a malformed model.json is a 422 naming it', async () => {
    const c = services().storage.ciBlobs.getContainerClient('ci-malformed');
    await c.createIfNotExists();
    for (const [folder, text] of [
      ['CustomerInsights_a/Broken', '{"entities": [ {"name": '],
      ['CustomerInsights_a/Wrong', '{"entities": "none"}'],
      ['CustomerInsights_a/Null', 'null'],
    ] as const) {
      await c.getBlockBlobClient(`${folder}/model.json`).upload(text, Buffer.byteLength(text));
      const res = await describeFolder('ci-malformed', folder);
      expect(res.status, JSON.stringify(res.body)).toBe(422);
      expect(res.body.error.message).toContain(`${folder}/model.json`);
    }
  });

  it('a model.json over the run reader’s cap is a 422, not downloaded', async () => {
    const c = services().storage.ciBlobs.getContainerClient('ci-huge');
    await c.createIfNotExists();
    const big = Buffer.alloc(32 * 1024 * 1024 + 1, 0x20);
    await c.getBlockBlobClient('CustomerInsights_a/Huge/model.json').uploadData(big);
    const res = await describeFolder('ci-huge', 'CustomerInsights_a/Huge');
    expect(res.status).toBe(422);
    expect(res.body.error.message).toMatch(/larger than 32 MB/);
  });

  it('a walk past its probe budget stops and says truncated', async () => {
    const blobs = services().storage.ciBlobs;
    for (let i = 0; i < 12; i++)
      await writeCiExport(blobs, [{ segment: 'S', partitions: [rows(1)] }], { folder: `CustomerInsights_many/E${i}` });
    DISCOVERY_LIMITS.probes = 6;
    const res = await call(sourcesList, { method: 'GET', path: 'sources', query: { container: 'ci-exports' } });
    expect(res.status).toBe(200);
    expect(res.body.truncated).toBe(true);
    expect(res.body.folders.length).toBeLessThan(12);
    DISCOVERY_LIMITS.probes = defaults.probes;
    DISCOVERY_LIMITS.seconds = 0; // out of time at once
    const late = await call(sourcesList, { method: 'GET', path: 'sources', query: { container: 'ci-exports' } });
    expect(late.body).toMatchObject({ truncated: true, folders: [] });
  });
});
