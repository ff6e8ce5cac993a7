// Finding the snapshot a run reads, against real Azurite: what each kind of missing or bad source
// says, and that a snapshot's identity follows model.json and its partitions.
import { describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { locateSnapshot, SnapshotUnavailable } from '../../shared/snapshot/locate';
import { useAzurite } from '../helpers/app';
import { rows, writeCiExport } from '../helpers/ci-export';
import { useCountingStorage } from '../helpers/counting-storage';

const { azurite } = useAzurite();
const countingClient = useCountingStorage(() => azurite().connectionString);

const failure = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: unknown) => e as SnapshotUnavailable,
  );

describe('locating a snapshot', () => {
  it('reads every segment of model.json, sizes and versions of each partition included', async () => {
    const blobs = services().storage.ciBlobs;
    const tables = [
      { segment: 'A', partitions: [rows(3), rows(2, { from: 10 })] },
      { segment: 'B', partitions: [rows(4, { from: 20 })] },
      { segment: 'C', partitions: [rows(1, { from: 30 })] },
    ];
    const source = await writeCiExport(blobs, tables);
    const snapshot = await locateSnapshot(blobs, source, ['C', 'A', 'B']);
    expect(snapshot.source).toBe('model.json');
    // In the export's segment order, whatever order model.json names them in.
    expect(snapshot.tables.map((t) => [t.segment, t.partitions.length])).toEqual([
      ['C', 1],
      ['A', 2],
      ['B', 1],
    ]);
    const sizes = tables.flatMap((t) => t.partitions.map((p) => Buffer.byteLength(p)));
    expect(snapshot.totalBytes).toBe(sizes.reduce((a, b) => a + b, 0));
    expect(snapshot.tables.every((t) => t.partitions.every((p) => p.etag))).toBe(true);
    // The same blobs are the same snapshot; a partition written again is a new one.
    expect((await locateSnapshot(blobs, source, ['C', 'A', 'B'])).id).toBe(snapshot.id);
    const rewritten = snapshot.tables[2]!.partitions[0]!.blobName;
    await blobs
      .getContainerClient(source.container)
      .getBlockBlobClient(rewritten)
      .upload(rows(4, { from: 20 }), 10_000);
    expect((await locateSnapshot(blobs, source, ['C', 'A', 'B'])).id).not.toBe(snapshot.id);
  });

  it('asks storage no more than it needs: model.json in one GET, then every partition at once', async () => {
    const source = await writeCiExport(services().storage.ciBlobs, [
      { segment: 'A', partitions: [rows(3), rows(2, { from: 10 })] },
      { segment: 'B', partitions: [rows(4, { from: 20 })] },
    ]);
    const { blobs, traffic } = await countingClient(3);
    await locateSnapshot(blobs, source, ['A', 'B']);
    // No look at the container first, no HEAD of model.json before its GET: each is a round trip the run waits for.
    expect(traffic.requests).toEqual(['GET blob', 'HEAD blob', 'HEAD blob', 'HEAD blob']);
    // The partitions of both segments are asked for together.
    expect(traffic.mostAtOnce).toBe(3);
  });

  it('without model.json, looks at the container only then, and reads the timestamp folders', async () => {
    const source = await writeCiExport(services().storage.ciBlobs, [{ segment: 'A', partitions: [rows(2)] }], {
      withModel: false,
    });
    const { blobs, traffic } = await countingClient();
    const outcome = await locateSnapshot(blobs, source, ['A']).catch((e: unknown) => e as SnapshotUnavailable);
    // The folder was just written: it has not settled yet, and that is what the run is told; not that the container is missing.
    expect(outcome).toMatchObject({ kind: 'incomplete' });
    expect(traffic.requests.slice(0, 2)).toEqual(['GET blob', 'GET container']);
  });

  it('says which is missing: the container, a segment (naming those there are), or a partition', async () => {
    const blobs = services().storage.ciBlobs;
    const source = await writeCiExport(blobs, [{ segment: 'A', partitions: [rows(2)] }]);
    const noContainer = await failure(locateSnapshot(blobs, { ...source, container: 'no-such-container' }, ['A']));
    expect(noContainer).toBeInstanceOf(SnapshotUnavailable);
    expect(noContainer).toMatchObject({
      kind: 'missing',
      message: expect.stringMatching(/Container "no-such-container" does not exist/),
    });
    const noSegment = await failure(locateSnapshot(blobs, source, ['A', 'Z']));
    expect(noSegment).toMatchObject({ kind: 'invalid', message: 'Segment "Z" is not in model.json (it has: A)' });
    const halfWritten = await writeCiExport(blobs, [{ segment: 'A', partitions: [rows(2), null] }]);
    const noPartition = await failure(locateSnapshot(blobs, halfWritten, ['A']));
    expect(noPartition).toMatchObject({
      kind: 'incomplete',
      message: expect.stringMatching(/A_2\.csv is listed in model\.json but missing/),
    });
  });

  it('refuses a model.json over 32 MB without reading it', async () => {
    const source = await writeCiExport(services().storage.ciBlobs, [{ segment: 'A', partitions: [rows(2)] }]);
    const huge = Buffer.alloc(32 * 1024 * 1024 + 1, 0x20);
    await services()
      .storage.ciBlobs.getContainerClient(source.container)
      .getBlockBlobClient(`${source.folder}/model.json`)
      .upload(huge, huge.length);
    const { blobs, traffic } = await countingClient();
    expect(await failure(locateSnapshot(blobs, source, ['A']))).toMatchObject({
      kind: 'invalid',
      message: 'model.json is larger than 32 MB',
    });
    expect(traffic.bodyBytes).toBeLessThan(8 * 1024 * 1024);
  }, 30_000);
});
