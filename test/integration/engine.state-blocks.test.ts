// A change run adds its change to each bucket's state blob as a block, instead of writing the blob
// again whole; the next run reads the blocks applied in turn. Written whole again under new
// settings, or once the later blocks grow past their share of the first.
import { beforeEach, describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { CONTAINERS } from '../../shared/store/clients';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows } from '../helpers/ci-export';
import { runNow, useSandbox, mutableExport as mutableExportAt } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

/** Each bucket blob of the export's state, with the sizes of its committed blocks. */
async function stateBlocks(exportId: string): Promise<Map<string, number[]>> {
  const container = services().storage.appBlobs.getContainerClient(CONTAINERS.state);
  const blobs = new Map<string, number[]>();
  for await (const b of container.listBlobsFlat({ prefix: `${exportId}/b` })) {
    if (b.name.includes('.early-')) continue;
    const list = await container.getBlockBlobClient(b.name).getBlockList('committed');
    blobs.set(
      b.name,
      (list.committedBlocks ?? []).map((block) => block.size),
    );
  }
  return blobs;
}

const PROFILES = 2000;

describe("a bucket's state written in blocks", () => {
  it('a change run adds a small block, and the next run reads it: nothing sent again, no leaver withdrawn twice', async () => {
    const { exp, rewrite } = await mutableExportAt(sandbox().url, [{ segment: 'S', partitions: [rows(PROFILES)] }]);
    const first = await runNow(exp.id);
    expect(first.run.counts).toMatchObject({ profiles: PROFILES, sent: PROFILES });
    const written = await stateBlocks(exp.id);
    expect([...written.values()].every((sizes) => sizes.length === 1)).toBe(true);

    // c7 changes its email, c8 leaves, c2001 is new.
    const changed = rows(PROFILES).replace('p7@example.com', 'new7@example.com').replace('c8,,p8@example.com,Name8\n', '');
    await rewrite([{ segment: 'S', partitions: [changed + rows(1, { from: PROFILES + 1 })] }]);
    const change = await runNow(exp.id);
    expect(change.run.counts).toMatchObject({ sent: 2, removed: 1, unchanged: PROFILES - 2 });
    const added = await stateBlocks(exp.id);
    const grown = [...added].filter(([name, sizes]) => sizes.length > written.get(name)!.length);
    expect(grown.length).toBeGreaterThan(0);
    for (const [name, sizes] of grown) {
      // The blob as it was, and a block of the change after it: a few lines, not the bucket again.
      expect(sizes.slice(0, -1)).toEqual(written.get(name));
      expect(sizes[sizes.length - 1]).toBeLessThan(1024);
    }
    expect(sandbox().profiles.get('external_id:u7')!.attributes.email).toBe('new7@example.com');

    // The same rows in a new snapshot: read and diffed against the state's blocks.
    await rewrite([{ segment: 'S', partitions: [changed + rows(1, { from: PROFILES + 1 })] }]);
    const requests = sandbox().stats.requests;
    const again = await runNow(exp.id);
    expect(again.run.counts).toMatchObject({ profiles: PROFILES, unchanged: PROFILES, sent: 0, removed: 0 });
    expect(sandbox().stats.requests).toBe(requests);
  }, 60_000);

  it('written whole again under new settings, and once the later blocks outgrow their share of the first', async () => {
    const { exp, rewrite, patch } = await mutableExportAt(sandbox().url, [{ segment: 'S', partitions: [rows(PROFILES)] }]);
    await runNow(exp.id);
    const blockCounts = async () => [...(await stateBlocks(exp.id)).values()].map((sizes) => sizes.length);
    // Each run renames a twentieth of the profiles: a block of ~5 % of the state, so a few runs
    // outgrow an eighth and the blob is written whole again, a block of all its lines.
    const counts: number[] = [];
    for (let run = 1; run <= 4; run++) {
      await rewrite([
        { segment: 'S', partitions: [rows(PROFILES, { name: (i) => (i % 20 === 0 ? `Run${run}-${i}` : `Name${i}`) })] },
      ]);
      const { run: record } = await runNow(exp.id);
      expect(record.counts).toMatchObject({ sent: PROFILES / 20, unchanged: PROFILES - PROFILES / 20 });
      counts.push(Math.max(...(await blockCounts())));
    }
    expect(counts[0]).toBe(2);
    expect(counts).toContain(1);
    // Whatever blocks each run left, the next one reads what Braze holds: the same rows send nothing.
    await rewrite([{ segment: 'S', partitions: [rows(PROFILES, { name: (i) => (i % 20 === 0 ? `Run4-${i}` : `Name${i}`) })] }]);
    const unchanged = await runNow(exp.id);
    expect(unchanged.run.counts).toMatchObject({ sent: 0, unchanged: PROFILES });

    await patch({ matching: { ...MATCHING, attributes: { nickname: 'FirstName' } } });
    const remapped = await runNow(exp.id);
    expect(remapped.run.counts).toMatchObject({ sent: PROFILES });
    expect(await blockCounts()).toEqual((await blockCounts()).map(() => 1));
  }, 120_000);
});
