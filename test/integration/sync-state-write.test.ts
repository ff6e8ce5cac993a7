// A bucket's state written: the header and lines whole, from the pieces they lie in; only over the
// version this worker read (or where there was none), so a worker that lost the export to another
// stops instead of overwriting its state.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { StateTakenOver, SyncStateStore, type BucketHeader } from '../../shared/engine';
import { services } from '../../shared/services';
import { CONTAINERS } from '../../shared/store/clients';
import { useAzurite } from '../helpers/app';

useAzurite();

const header: BucketHeader = { definition: 'def', fields: ['email'], membership: { format: 'list', names: ['seg'] } };
const lines = (from: number, n: number) =>
  Buffer.from(Array.from({ length: n }, (_, i) => `c${from + i}\te:u${from + i}\tfp${from + i}\t1\n`).join(''));
const written = (...pieces: Buffer[]) => Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), ...pieces]);

describe("a bucket's state written", () => {
  it('whole, from its pieces; only over the version read, or where there was none: else it is taken over', async () => {
    const state = new SyncStateStore(services().storage.appBlobs.getContainerClient(CONTAINERS.state), randomUUID());
    const [kept, taken] = [lines(0, 20_000), lines(20_000, 10)];
    await state.writeBucket(3, header, [kept, taken], null);
    // Read as a run reads it: to a file, through the app's own GET, with its version.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'state-write-'));
    const first = await state.downloadBucket(3, path.join(dir, 'b3.tsv'));
    const firstBytes = readFileSync(path.join(dir, 'b3.tsv'));
    rmSync(dir, { recursive: true, force: true });
    expect(firstBytes.equals(written(kept, taken))).toBe(true);

    const takenOver = (e: unknown) =>
      e instanceof StateTakenOver && e.message === 'the sync state of bucket 3 was written by another worker';
    // Another worker wrote it where this one found none…
    expect(takenOver(await state.writeBucket(3, header, [taken], null).catch((e: unknown) => e))).toBe(true);
    // …or over the version this one read.
    await state.writeBucket(3, header, [taken], first.etag);
    expect(takenOver(await state.writeBucket(3, header, [kept], first.etag).catch((e: unknown) => e))).toBe(true);
    expect(Buffer.from((await state.readBucket(3)).bytes!).equals(written(taken))).toBe(true);
  });
});
