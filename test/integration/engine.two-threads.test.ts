// A run with sync state reads on two engine threads, each its share of every segment's partitions:
// the outcome must be the one thread's outcome (tiny buckets here, so a test-sized snapshot has
// many and gets both threads).
import { describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { splitTables } from '../../shared/engine/run/engine-threads';
import type { SegmentTable } from '../../shared/snapshot/locate';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { createConnection, createExport, runNow, useSandbox } from '../helpers/engine';

useAzurite({ SYNC_BUCKET_TARGET_BYTES: '1024' });
const sandbox = useSandbox();

const table = (segment: string, sizes: number[]): SegmentTable =>
  ({
    segment,
    columns: [],
    partitions: sizes.map((sizeBytes, i) => ({ blobName: `${segment}_${i + 1}.csv`, sizeBytes })),
  }) as unknown as SegmentTable;

describe('reading on two threads', () => {
  it('gives each thread a first part and the rest of each segment, in order, the bytes as even as those parts allow', () => {
    const names = (ts: SegmentTable[]) => ts.map((t) => `${t.segment}:${t.partitions.map((p) => p.blobName).join('+')}`);
    const bytes = (ts: SegmentTable[]) => ts.flatMap((t) => t.partitions).reduce((n, p) => n + p.sizeBytes, 0);
    // The least difference any choice of first parts gives, tried one by one.
    const leastGap = (shape: number[][]): number => {
      const total = shape.flat().reduce((a, b) => a + b, 0);
      const sums = shape.reduce<number[]>(
        (reached, sizes) =>
          reached.flatMap((s) => sizes.map((_, k) => s + sizes.slice(0, k + 1).reduce((a, b) => a + b, 0)).concat(s)),
        [0],
      );
      return Math.min(...sums.map((s) => Math.abs(total - 2 * s)));
    };
    for (const shape of [
      [[250, 250, 4], [250, 250, 4], [100]],
      // A 1 M random three-segment snapshot (K rows): each table alone split best gave 750 against 963.
      [
        [250, 250, 71],
        [250, 250, 71],
        [250, 250, 71],
      ],
      [[10], [7, 7, 7, 7], [3, 30], [1, 1, 1, 1, 1, 40]],
    ]) {
      const tables = shape.map((sizes, i) => table(String.fromCharCode(65 + i), sizes));
      const [first, rest] = splitTables(tables);
      expect(Math.abs(bytes(first) - bytes(rest))).toBe(leastGap(shape));
      // Each table's partitions, in order: a first part to the reading thread, the rest to the helper.
      for (const t of tables) {
        const all = names([t])[0]!.split(':')[1]!.split('+');
        const head =
          names(first.filter((f) => f.segment === t.segment))[0]
            ?.split(':')[1]!
            .split('+') ?? [];
        const tail =
          names(rest.filter((r) => r.segment === t.segment))[0]
            ?.split(':')[1]!
            .split('+') ?? [];
        expect([...head, ...tail]).toEqual(all);
      }
    }
    // One partition in all: nothing to share.
    expect(splitTables([table('A', [10])])).toEqual([[table('A', [10])], []]);
  });

  it("a change run read by both threads sends what changed, keeps a segment's first row winning and reports both threads' rejected rows", async () => {
    const app = services();
    // Segment A in four partitions: c1 is in the first and (again, with another name) in the last;
    // each end holds a row with no identifier. The threads split A between them.
    const snapshot = (version: string, changed: number) => {
      const name = (i: number) => (i === changed ? `Changed${version}` : `Name${i}`);
      return [
        {
          segment: 'A',
          partitions: [
            `${rows(1, { name: () => `First${version}` })},,nobody@example.com,X\n${rows(40, { from: 2, name })}`,
            rows(40, { from: 42, name }),
            rows(40, { from: 82, name }),
            `${rows(38, { from: 122, name })}${rows(1, { name: () => `Later${version}` })},,nobody2@example.com,Y\n`,
          ],
        },
        { segment: 'B', partitions: [rows(30, { from: 100, name }), rows(30, { from: 130, name })] },
      ];
    };
    const blobs = app.storage.ciBlobs;
    const source = await writeCiExport(blobs, snapshot('1', -1), { stamp: '2026/11/20/0100' });
    const conn = await createConnection(sandbox().url);
    const exp = await createExport(conn.id, { source, segments: ['A', 'B'], matching: MATCHING });
    const first = await runNow(exp.id);
    expect(first.run.counts).toMatchObject({ rowsRead: 222, profiles: 161, sent: 159, rejected: 2 });

    // The next snapshot: c1's rows are renamed at both ends, c150 (in B's second partition, read by the helper) changes.
    await writeCiExport(blobs, snapshot('2', 150), { folder: source.folder, stamp: '2026/11/20/0200' });
    const objectsBefore = sandbox().stats.objectsProcessed;
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.buckets!.total).toBeGreaterThan(1);
    expect(run.counts).toMatchObject({ rowsRead: 222, profiles: 161, sent: 2, unchanged: 157, rejected: 2, failed: 0 });
    expect(run.segments).toEqual({ A: { rows: 162 }, B: { rows: 60 } });
    expect(sandbox().stats.objectsProcessed).toBe(objectsBefore + 2);
    expect(sandbox().profiles.get('external_id:u1')!.attributes.first_name).toBe('First2');
    expect(sandbox().profiles.get('alias:ci_customer_id:c150')!.attributes.first_name).toBe('Changed2');
    const [container, ...name] = run.rejectedReport!.split('/');
    const report = (
      await app.storage.appBlobs.getContainerClient(container!).getBlobClient(name.join('/')).downloadToBuffer()
    ).toString();
    expect(report).toMatch(/A,A_1\.csv,2,,no usable identifier/);
    expect(report).toMatch(/A,A_4\.csv,40,,no usable identifier/);
  });
});
