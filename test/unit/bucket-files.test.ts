// The spill's bucket files when a writer keeps them open (the reading thread's spill): every line
// written is in its bucket's file once closed, buckets past the open-file cap are appended to as
// before, a removed bucket written again starts a new file, and no descriptor outlives close().
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BucketFiles, bucketFile, removeBucketFiles } from '../../shared/engine/spill/bucket-files';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bucket-files-'));
  dirs.push(dir);
  return dir;
}

/** This process's open descriptors on files in `dir`. */
function openIn(dir: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${dir}/`);
    } catch {
      return false;
    }
  }).length;
}

describe('bucket files kept open', () => {
  it('hold every line written, in order, past the open-file cap too; nothing stays open after close()', async () => {
    const dir = tempDir();
    const buckets = 300;
    const keptOpen = 100; // fewer than the buckets written
    const files = new BucketFiles(dir, 'rows', buckets, keptOpen);
    const expected: string[][] = Array.from({ length: buckets }, () => []);
    const wide = 'ü'.repeat(20_000); // longer than a bucket's buffer: straight to the file
    for (let i = 0; i < 120_000; i++) {
      const bucket = (i * 7919) % buckets;
      const line = i % 3989 === 0 ? `${i},${wide}` : `${i},row ${i} of bucket ${bucket},${'x'.repeat(40)}`;
      files.write(bucket, line);
      expected[bucket]!.push(line);
    }
    if (process.platform === 'linux') expect(openIn(dir)).toBe(keptOpen);
    files.close();
    if (process.platform === 'linux') expect(openIn(dir)).toBe(0);
    const reader = new BucketFiles(dir, 'rows');
    for (let bucket = 0; bucket < buckets; bucket++) {
      const lines: string[] = [];
      await reader.read(bucket, (line) => lines.push(line));
      expect(lines).toEqual(expected[bucket]);
    }
  });

  it('a bucket removed and written again has only the lines written after', async () => {
    const dir = tempDir();
    const files = new BucketFiles(dir, 'rows', 4, 4);
    files.write(1, 'before');
    files.flushAll();
    await files.remove(1);
    files.write(1, 'after');
    files.close();
    expect(await new BucketFiles(dir, 'rows').readText(1)).toBe('after\n');
  });
});

describe("a bucket's files read at once", () => {
  it('are one buffer, in the order of their kinds, a kind never written counting as empty; removing them leaves none, written or not', async () => {
    const dir = tempDir();
    const [first, second, third] = ['rows', 'rows-2', 'rows-3'].map((kind) => new BucketFiles(dir, kind));
    first!.write(4, 'a1');
    first!.write(4, 'ü2'.repeat(10_000));
    third!.write(4, 'c1');
    second!.write(5, 'other bucket');
    for (const f of [first, second, third]) f!.close();
    const expected = `a1\n${'ü2'.repeat(10_000)}\nc1\n`;
    const memory = Buffer.alloc(1 << 20);
    const read = BucketFiles.readBytesSync([first!, second!, third!], 4, (length) => memory.subarray(0, length));
    expect(read.toString('utf8')).toBe(expected);
    expect((await BucketFiles.readBytes([first!, second!, third!], 4)).toString('utf8')).toBe(expected);
    expect(BucketFiles.readBytesSync([second!], 4, Buffer.allocUnsafe).length).toBe(0);

    await removeBucketFiles(dir, 4, ['rows', 'rows-2', 'rows-3', 'never-written']);
    expect(readdirSync(dir)).toEqual([path.basename(bucketFile(dir, 5, 'rows-2'))]);
  });
});
