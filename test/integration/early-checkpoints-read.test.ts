// A bucket's checkpoints of what was sent early, read back as its state by an attempt that follows
// a killed one: each checkpoint one blob of every bucket's lines, a bucket's lines read back in the
// order written under the first checkpoint's header, whether the engine thread is given them as a
// file (streamed) or a caller as bytes; what Braze refused beside them; no state where no
// checkpoint holds lines; and the pieces per bucket that earlier versions wrote, read beside them.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { SyncStateStore, type BucketHeader, type CheckpointRange } from '../../shared/engine';
import {
  checkpointBlobs,
  refusalLine,
  uploadCheckpointBlob,
  type EarlyRefusal,
} from '../../shared/engine/state/early-checkpoint-blobs';
import { services } from '../../shared/services';
import { CONTAINERS } from '../../shared/store/clients';
import { useAzurite } from '../helpers/app';

useAzurite();

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

const header: BucketHeader = {
  definition: 'def',
  fields: ['email'],
  membership: { format: 'list', names: ['seg'] },
  sentBy: 'run-1',
};
const container = () => services().storage.appBlobs.getContainerClient(CONTAINERS.state);

/** A new export's sync state, and a temp folder for the files a checkpoint is read from. */
function setUp() {
  const exportId = randomUUID();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'early-read-'));
  dirs.push(dir);
  let files = 0;
  /** A bucket's part of a checkpoint: its state lines and refusals, in a file of their own after some bytes of another bucket's. */
  const range = (bucket: number, lines: string, refused: EarlyRefusal[] = []): CheckpointRange => {
    const file = path.join(dir, `range-${files++}`);
    const refusals = refused.map(refusalLine).join('');
    writeFileSync(file, `other bucket's bytes\n${lines}${refusals}`);
    return { bucket, file, from: 21, lines: Buffer.byteLength(lines), refused: Buffer.byteLength(refusals) };
  };
  /** A piece of one bucket's checkpoint, as earlier versions wrote it. */
  const piece = async (name: string, header: BucketHeader, text: string) => {
    const body = `${JSON.stringify(header)}\n${text}`;
    await container().getBlockBlobClient(`${exportId}/${name}`).upload(body, Buffer.byteLength(body));
  };
  const names = async () => {
    const found: string[] = [];
    for await (const b of container().listBlobsFlat({ prefix: `${exportId}/` })) found.push(b.name.slice(exportId.length + 1));
    return found.sort();
  };
  return { state: new SyncStateStore(container(), exportId), exportId, dir, range, piece, names };
}

const lines = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => `c${from + i}\te:u${from + i}\tfp${from + i}\t1\n`).join('');

describe('checkpoints of what was sent early, read back as a bucket state', () => {
  it("a checkpoint is one blob whatever its buckets; a bucket's lines read back in order under the first header, as a file and as bytes, with the refusals", async () => {
    const { state, dir, range, names } = setUp();
    // Large ranges (several socket chunks each).
    const [first, second, third] = [lines(0, 5_000), lines(5_000, 5_000), lines(10_000, 10)];
    await state.writeEarlyCheckpoint(0, header, [
      range(3, first),
      range(5, lines(20_000, 3)),
      range(4, '', [{ key: 'c9', fp: 'fp9', reason: 'too long' }]),
      range(7, ''),
    ]);
    await state.writeEarlyCheckpoint(1, header, [range(3, second, [{ key: 'c77', fp: 'fp77', reason: 'bad email' }])]);
    await state.writeEarlyCheckpoint(2, header, [range(3, third)]);
    expect(await names()).toEqual(['buckets.early-0000.0.tsv', 'buckets.early-0001.0.tsv', 'buckets.early-0002.0.tsv']);
    expect(await state.earlyCheckpointNames()).toHaveLength(3);

    const expected = `${JSON.stringify(header)}\n${first}${second}${third}`;
    const file = path.join(dir, 'state-3.tsv');
    const downloaded = await state.downloadBucket(3, file);
    expect(downloaded).toMatchObject({ found: true, etag: null, early: true });
    expect(readFileSync(file, 'utf8')).toBe(expected);
    expect(downloaded.refused).toEqual({ sentBy: 'run-1', byKey: new Map([['c77', { fp: 'fp77', reason: 'bad email' }]]) });
    expect(Buffer.from((await state.readBucket(3)).bytes!).toString('utf8')).toBe(expected);
    expect(Buffer.from((await state.readBucket(5)).bytes!).toString('utf8')).toBe(
      `${JSON.stringify(header)}\n${lines(20_000, 3)}`,
    );

    // Refusals alone are no state: the bucket has none, and no file is written.
    const none = await state.downloadBucket(4, path.join(dir, 'state-4.tsv'));
    expect(none).toMatchObject({ found: false, early: false });
    expect(existsSync(path.join(dir, 'state-4.tsv'))).toBe(false);
    expect(none.refused?.byKey.get('c9')).toEqual({ fp: 'fp9', reason: 'too long' });
    expect((await state.readBucket(4)).bytes).toBeNull();
    expect(await state.downloadBucket(7, path.join(dir, 'state-7.tsv'))).toMatchObject({ found: false, refused: null });

    await state.removeEarlyCheckpoints();
    expect(await names()).toEqual([]);
    expect((await state.readBucket(3)).bytes).toBeNull();
  });

  it('a checkpoint larger than a blob goes on in another; each bucket is read whole from the one that has it', async () => {
    const { state, range, names } = setUp();
    const buckets = [0, 1, 2, 3].map((b) => lines(b * 1_000, 300));
    await state.writeEarlyCheckpoint(
      0,
      header,
      buckets.map((text, b) => range(b, text)),
      undefined,
      { partBytes: 10_000 },
    );
    // 5–7 KB a bucket: a blob goes on past 10 KB, so two buckets in each.
    expect(await names()).toEqual(['buckets.early-0000.0.tsv', 'buckets.early-0000.1.tsv']);
    for (const [b, text] of buckets.entries())
      expect(Buffer.from((await state.readBucket(b)).bytes!).toString('utf8')).toBe(`${JSON.stringify(header)}\n${text}`);
  });

  it('a checkpoint larger than a block is written in blocks, committed whole: every byte where a single PUT would put it', async () => {
    const { state, exportId, range } = setUp();
    // Blocks of 256 KB: the header spans two, ranges end inside blocks, and the last is ~25 blocks
    // long (each buffer read into again while the other is staged: it must have been sent whole).
    const block = 256 * 1024;
    const wide = { ...header, fields: Array.from({ length: 30_000 }, (_, i) => `field_${i}`) };
    const texts = [lines(0, 40), lines(100, 1), '', lines(200, 97), lines(1_000, 200_000)];
    const ranges = texts.map((text, b) => range(b, text, b === 2 ? [{ key: 'c3', fp: 'fp3', reason: 'bad' }] : []));
    await state.writeEarlyCheckpoint(0, wide, ranges, undefined, { blockBytes: block });
    const blob = container().getBlockBlobClient(`${exportId}/buckets.early-0000.0.tsv`);
    const { committedBlocks = [] } = await blob.getBlockList('all');
    const index = { header: wide, buckets: ranges.map((r) => [r.bucket, r.lines, r.refused]) };
    const refusals = refusalLine({ key: 'c3', fp: 'fp3', reason: 'bad' });
    const whole = `${JSON.stringify(index)}\n${texts[0]}${texts[1]}${refusals}${texts[3]}${texts[4]}`;
    expect(committedBlocks.map((b) => b.size)).toEqual(
      Array.from({ length: Math.ceil(whole.length / block) }, (_, i) => Math.min(block, whole.length - i * block)),
    );
    // Where the blob first differs (a diff of megabytes would not help).
    const got = await blob.downloadToBuffer();
    expect(got.findIndex((byte, i) => byte !== whole.charCodeAt(i))).toBe(-1);
    expect(got.length).toBe(whole.length);
    for (const b of [0, 1, 3, 4])
      expect(Buffer.from((await state.readBucket(b)).bytes!).toString('utf8')).toBe(`${JSON.stringify(wide)}\n${texts[b]}`);
  });

  it('blocks that end exactly where the first line or a range ends, around a range of nothing; a blob of exactly one block is one PUT', async () => {
    const { state, exportId, range } = setUp();
    const wide = { ...header, fields: Array.from({ length: 150 }, (_, i) => `field_${i}`) };
    const text = (n: number, tag: string) => `${tag}${'x'.repeat(n - tag.length - 1)}\n`;
    // The first line's length, with four-digit range lengths (the ones chosen below are too).
    const firstLength = (a: number, b: number) =>
      Buffer.byteLength(
        `${JSON.stringify({
          header: wide,
          buckets: [
            [0, a, 0],
            [1, 0, 0],
            [2, b, 0],
          ],
        })}\n`,
      );
    const block = firstLength(1000, 1000);
    expect(block).toBeGreaterThan(1000);
    expect(block).toBeLessThan(5000);
    // The first line is one block; bucket 0 the next; bucket 1 has nothing; bucket 2 spans two.
    const texts = [text(block, 'a'), '', text(2 * block - 10, 'c')];
    expect(firstLength(block, 2 * block - 10)).toBe(block);
    await state.writeEarlyCheckpoint(
      0,
      wide,
      texts.map((t, b) => range(b, t)),
      undefined,
      { blockBytes: block },
    );
    const blob = container().getBlockBlobClient(`${exportId}/buckets.early-0000.0.tsv`);
    const { committedBlocks = [] } = await blob.getBlockList('all');
    expect(committedBlocks.map((b) => b.size)).toEqual([block, block, block, block - 10]);
    for (const b of [0, 2])
      expect(Buffer.from((await state.readBucket(b)).bytes!).toString('utf8')).toBe(`${JSON.stringify(wide)}\n${texts[b]}`);
    expect((await state.readBucket(1)).bytes).toBeNull();

    // The same as one block: one PUT, its bucket's lines read back after those of the first.
    const one = { blockBytes: 4 * block - 10 };
    await state.writeEarlyCheckpoint(
      1,
      wide,
      texts.map((t, b) => range(b, t)),
      undefined,
      one,
    );
    const single = container().getBlockBlobClient(`${exportId}/buckets.early-0001.0.tsv`);
    expect((await single.getBlockList('all')).committedBlocks).toEqual([]); // a PUT stages no block
    expect((await single.getProperties()).contentLength).toBe(4 * block - 10);
    expect(Buffer.from((await state.readBucket(2)).bytes!).toString('utf8')).toBe(
      `${JSON.stringify(wide)}\n${texts[2]}${texts[2]}`,
    );
  });

  it('a buffer is read into again only once the block it held is staged, however slow the network', async () => {
    const { exportId, range } = setUp();
    const text = lines(0, 20_000);
    const [part] = checkpointBlobs(0, header, [range(1, text)]);
    const blob = container().getBlockBlobClient(`${exportId}/${part!.name}`);
    // The real client, each stage started 20 ms late: a buffer read into meanwhile would be sent so.
    const stage = blob.stageBlock.bind(blob);
    blob.stageBlock = async (...args) => {
      await new Promise((r) => setTimeout(r, 20));
      return await stage(...args);
    };
    await uploadCheckpointBlob(blob, part!, 64 * 1024);
    expect((await blob.getBlockList('all')).committedBlocks?.length).toBeGreaterThan(4);
    expect(Buffer.from((await new SyncStateStore(container(), exportId).readBucket(1)).bytes!).toString('utf8')).toBe(
      `${JSON.stringify(header)}\n${text}`,
    );
  });

  it('two writes of the same checkpoint at once leave one of them whole, never blocks of both', async () => {
    const { state, exportId, range } = setUp();
    const texts = [lines(0, 40_000), lines(100_000, 40_000)];
    const block = 64 * 1024;
    const writes = await Promise.allSettled(
      texts.map((text) => state.writeEarlyCheckpoint(0, header, [range(1, text)], undefined, { blockBytes: block })),
    );
    expect(writes.some((w) => w.status === 'fulfilled')).toBe(true);
    const got = (await container().getBlockBlobClient(`${exportId}/buckets.early-0000.0.tsv`).downloadToBuffer()).toString(
      'utf8',
    );
    const wholes = texts.map((text) => `${JSON.stringify({ header, buckets: [[1, Buffer.byteLength(text), 0]] })}\n${text}`);
    expect(wholes.indexOf(got)).not.toBe(-1);
  });

  it.each([
    ['in one PUT', {}],
    ['staged in blocks', { blockBytes: 1024 }],
  ])('a checkpoint whose second blob cannot be written (%s) says which buckets its first holds', async (_, sizes) => {
    const { state, range, exportId } = setUp();
    // The second blob's name is taken by a leased blob: its write is refused (412), not tried again.
    const taken = container().getBlockBlobClient(`${exportId}/buckets.early-0000.1.tsv`);
    const empty = `${JSON.stringify({ header, buckets: [] })}\n`;
    await taken.upload(empty, empty.length);
    const lease = taken.getBlobLeaseClient();
    await lease.acquireLease(-1);
    const written: number[] = [];
    const ranges = [0, 1, 2, 3].map((b) => range(b, lines(b * 1_000, 300)));
    await expect(
      state.writeEarlyCheckpoint(0, header, ranges, (buckets) => written.push(...buckets), { partBytes: 10_000, ...sizes }),
    ).rejects.toThrow();
    await lease.breakLease(0);
    expect(written).toEqual([0, 1]);
    expect(Buffer.from((await state.readBucket(1)).bytes!).toString('utf8')).toBe(
      `${JSON.stringify(header)}\n${lines(1_000, 300)}`,
    );
  });

  it('pieces per bucket, as earlier versions wrote them, are read beside the checkpoint blobs, in checkpoint order', async () => {
    const { state, dir, range, piece } = setUp();
    await piece('b2.early-0000.tsv', header, lines(0, 2));
    await piece('b2.early-0000.refused.jsonl', header, refusalLine({ key: 'c5', fp: 'fp5', reason: 'bad' }));
    await state.writeEarlyCheckpoint(1, header, [range(2, lines(10, 2))]);
    const read = await state.readBucket(2);
    expect(Buffer.from(read.bytes!).toString('utf8')).toBe(`${JSON.stringify(header)}\n${lines(0, 2)}${lines(10, 2)}`);
    const { refused } = await state.downloadBucket(2, path.join(dir, 'state-2.tsv'));
    expect(refused?.byKey.get('c5')).toEqual({ fp: 'fp5', reason: 'bad' });
    expect(await state.earlyCheckpointNames()).toHaveLength(3);
  });

  it("a header longer than a socket's chunk, and not ASCII: a checkpoint blob's first line is read whole, and a later piece's left out whole", async () => {
    const { state, dir, range, piece } = setUp();
    // ~300 KB of header, in more bytes than characters: it reaches the reader over several chunks,
    // and the bucket's lines start where its bytes end.
    const wide = { ...header, fields: Array.from({ length: 5_000 }, (_, i) => `prénom_名前_attribute_${i}`) };
    await state.writeEarlyCheckpoint(0, wide, [range(6, 'c1\te:u1\tfp1\t1\n')]);
    await piece('b6.early-0001.tsv', wide, 'c2\te:u2\tfp2\t1\n');
    const file = path.join(dir, 'state-6.tsv');
    await state.downloadBucket(6, file);
    expect(readFileSync(file, 'utf8')).toBe(`${JSON.stringify(wide)}\nc1\te:u1\tfp1\t1\nc2\te:u2\tfp2\t1\n`);
  });
});
