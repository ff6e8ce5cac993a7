// The spill's bucket files when a writer keeps them open (the reading thread's spill): every line
// written is in its bucket's file once closed, buckets past the open-file cap are appended to as
// before, a removed bucket written again starts a new file, and no descriptor outlives close().
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BucketFiles } from '../../shared/engine/spill/bucket-files';

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
    const buckets = 300; // more than the 256 kept open
    const files = new BucketFiles(dir, 'rows', buckets, true);
    const expected: string[][] = Array.from({ length: buckets }, () => []);
    const wide = 'ü'.repeat(20_000); // longer than a bucket's buffer: straight to the file
    for (let i = 0; i < 120_000; i++) {
      const bucket = (i * 7919) % buckets;
      const line = i % 3989 === 0 ? `${i},${wide}` : `${i},row ${i} of bucket ${bucket},${'x'.repeat(40)}`;
      files.write(bucket, line);
      expected[bucket]!.push(line);
    }
    if (process.platform === 'linux') expect(openIn(dir)).toBe(256);
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
    const files = new BucketFiles(dir, 'rows', 4, true);
    files.write(1, 'before');
    files.flushAll();
    await files.remove(1);
    files.write(1, 'after');
    files.close();
    expect(await new BucketFiles(dir, 'rows').readText(1)).toBe('after\n');
  });
});
