// A bucket's state written: the header and lines whole, from the pieces they lie in, or a change
// added as a block after the blob's; only over the version this worker read (or where there was
// none), so a worker that lost the export to another stops instead of overwriting its state.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseBucketState, StateTakenOver, SyncStateStore, type BucketHeader } from '../../shared/engine';
import { goneLine } from '../../shared/engine/state/state-line';
import { services } from '../../shared/services';
import { CONTAINERS } from '../../shared/store/clients';
import { useAzurite } from '../helpers/app';

useAzurite();

const header: BucketHeader = { definition: 'def', fields: ['email'], membership: { format: 'list', names: ['seg'] } };
const lines = (from: number, n: number) =>
  Buffer.from(Array.from({ length: n }, (_, i) => `c${from + i}\te:u${from + i}\tfp${from + i}\t1\n`).join(''));
/** A state blob's bytes as its first line (the header, parsed) and the rest. */
const split = (bytes: Uint8Array) => {
  const text = Buffer.from(bytes);
  const end = text.indexOf(0x0a);
  return { header: JSON.parse(text.toString('utf8', 0, end)) as BucketHeader, rest: text.subarray(end + 1) };
};

describe("a bucket's state written", () => {
  it('whole, from its pieces; only over the version read, or where there was none: else it is taken over', async () => {
    const state = new SyncStateStore(services().storage.appBlobs.getContainerClient(CONTAINERS.state), randomUUID());
    const [kept, taken] = [lines(0, 20_000), lines(20_000, 10)];
    await state.writeBucket(3, header, [kept, taken], null);
    // Read as a run reads it: to a file, through the app's own GET, with its version.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'state-write-'));
    const first = await state.downloadBucket(3, path.join(dir, 'b3.tsv'));
    const firstBytes = split(readFileSync(path.join(dir, 'b3.tsv')));
    rmSync(dir, { recursive: true, force: true });
    expect(firstBytes.header).toEqual({ ...header, block: expect.stringMatching(/^[A-Za-z0-9+/]{16}$/) });
    expect(firstBytes.rest.equals(Buffer.concat([kept, taken]))).toBe(true);

    const takenOver = (e: unknown) =>
      e instanceof StateTakenOver && e.message === 'the sync state of bucket 3 was written by another worker';
    // Another worker wrote it where this one found none…
    expect(takenOver(await state.writeBucket(3, header, [taken], null).catch((e: unknown) => e))).toBe(true);
    // …or over the version this one read.
    await state.writeBucket(3, header, [taken], first.etag);
    expect(takenOver(await state.writeBucket(3, header, [kept], first.etag).catch((e: unknown) => e))).toBe(true);
    expect(split((await state.readBucket(3)).bytes!).rest.equals(taken)).toBe(true);
  });

  it('a change added as a block after those read: the blob is then both, read in one GET; only over the version read', async () => {
    const state = new SyncStateStore(services().storage.appBlobs.getContainerClient(CONTAINERS.state), randomUUID());
    await state.writeBucket(5, header, [lines(0, 1000)], null);
    const read = await state.readBucket(5);
    const previous = parseBucketState(read.bytes);
    const change = Buffer.from(`${goneLine('c3')}\n${lines(1000, 2)}`);
    const writtenBy = { run: 'r2', counts: {}, omitted: {}, refused: [], refusedTotal: 0 };
    await state.writeBucket(5, { ...header, writtenBy }, [change], read.etag, previous.blocks!.ids);
    const now = parseBucketState((await state.readBucket(5)).bytes);
    expect(now.blocks!.ids.slice(0, 1)).toEqual(previous.blocks!.ids);
    expect(now.blocks!.ids).toHaveLength(2);
    expect(now.writtenBy).toEqual(writtenBy);
    expect(now.entries.has('c3')).toBe(false);
    expect(now.entries.size).toBe(1001);
    expect(now.entries.get('c1001')).toEqual({ identity: 'e:u1001', fp: 'fp1001', heldFields: '1' });
    // A worker that read the first version adds nothing over the second.
    const late = await state.writeBucket(5, header, [change], read.etag, previous.blocks!.ids).catch((e: unknown) => e);
    expect(late instanceof StateTakenOver).toBe(true);
    expect(parseBucketState((await state.readBucket(5)).bytes).blocks!.ids).toEqual(now.blocks!.ids);
  });
});
