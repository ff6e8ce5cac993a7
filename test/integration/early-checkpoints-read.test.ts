// A bucket's checkpoints of what was sent early, read back as its state by an attempt that follows
// a killed one: every piece's lines in the order written under the first piece's header, whether
// the engine thread is given them as a file (streamed piece by piece) or a caller as bytes; what
// Braze refused beside them; and no state where no piece holds lines.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { SyncStateStore, type BucketHeader } from '../../shared/engine';
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
const store = () => new SyncStateStore(services().storage.appBlobs.getContainerClient(CONTAINERS.state), randomUUID());

describe('checkpoints of what was sent early, read back as a bucket state', () => {
  it("one state: the pieces' lines in order under the first header, as a file and as bytes, with the refusals beside them", async () => {
    const state = store();
    // Large pieces (several socket chunks each), written as text and as bytes.
    const lines = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => `c${from + i}\te:u${from + i}\tfp${from + i}\t1\n`).join('');
    const first = lines(0, 5_000);
    const second = lines(5_000, 5_000);
    const third = lines(10_000, 10);
    await state.writeEarlyPiece(3, 0, header, first);
    await state.writeEarlyPiece(3, 1, header, Buffer.from(second), [{ key: 'c77', fp: 'fp77', reason: 'bad email' }]);
    await state.writeEarlyPiece(3, 2, header, Buffer.from(third));
    await state.writeEarlyPiece(4, 0, header, '', [{ key: 'c9', fp: 'fp9', reason: 'too long' }]);

    const expected = `${JSON.stringify(header)}\n${first}${second}${third}`;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'early-read-'));
    dirs.push(dir);
    const file = path.join(dir, 'state-3.tsv');
    const downloaded = await state.downloadBucket(3, file);
    expect(downloaded).toMatchObject({ found: true, etag: null, early: true });
    expect(readFileSync(file, 'utf8')).toBe(expected);
    expect(downloaded.refused).toEqual({
      sentBy: 'run-1',
      byKey: new Map([['c77', { fp: 'fp77', reason: 'bad email' }]]),
    });
    expect(Buffer.from((await state.readBucket(3)).bytes!).toString('utf8')).toBe(expected);

    // Refusals alone are no state: the bucket has none, and no file is written.
    const none = await state.downloadBucket(4, path.join(dir, 'state-4.tsv'));
    expect(none).toMatchObject({ found: false, early: false });
    expect(existsSync(path.join(dir, 'state-4.tsv'))).toBe(false);
    expect(none.refused?.byKey.get('c9')).toEqual({ fp: 'fp9', reason: 'too long' });
    expect((await state.readBucket(4)).bytes).toBeNull();
  });

  it("a later piece's header longer than a socket's chunk is left out whole", async () => {
    const state = store();
    // ~200 KB of header: it reaches the reader over several chunks.
    const wide = { ...header, fields: Array.from({ length: 5_000 }, (_, i) => `attribute_with_a_long_name_${i}`) };
    await state.writeEarlyPiece(6, 0, wide, 'c1\te:u1\tfp1\t1\n');
    await state.writeEarlyPiece(6, 1, wide, 'c2\te:u2\tfp2\t1\n');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'early-read-'));
    dirs.push(dir);
    const file = path.join(dir, 'state-6.tsv');
    await state.downloadBucket(6, file);
    expect(readFileSync(file, 'utf8')).toBe(`${JSON.stringify(wide)}\nc1\te:u1\tfp1\t1\nc2\te:u2\tfp2\t1\n`);
  });
});
