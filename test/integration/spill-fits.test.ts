// A run whose spill would not fit the instance's temporary folder is refused before it reads or
// sends anything, with a message that says what to do (Flex Consumption gives 0.8 GB at any size).
import { describe, expect, it } from 'vitest';
import { RunAborted, runExport } from '../../shared/engine';
import { services } from '../../shared/services';
import { locateSnapshot } from '../../shared/snapshot/locate';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { createConnection, createExport, engineInput, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();

describe('the temporary folder', () => {
  it('a snapshot too big for it fails the run at once, naming its size and what to do; nothing reaches Braze', async () => {
    const app = services();
    const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(20)] }]);
    const exp = await createExport((await createConnection(sandbox().url)).id, { source, segments: ['S'], matching: MATCHING });
    const snapshot = await locateSnapshot(app.storage.ciBlobs, exp.source, exp.segments);
    const run = (totalBytes: number) =>
      runExport({
        ...engineInput(exp, snapshot, sandbox().url),
        // What the snapshot's partitions add up to, as locateSnapshot reports it: here far beyond any disk.
        snapshot: { ...snapshot, totalBytes },
      });
    const refused = await run(2 ** 60).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RunAborted);
    expect((refused as Error).message).toMatch(/GB of CSV .* temporary folder, which has [\d.]+ GB free/);
    expect(sandbox().stats.requests).toBe(0);
    // The same snapshot at its real size runs.
    expect((await run(snapshot.totalBytes)).progress.counts.sent).toBe(20);
  });
});
