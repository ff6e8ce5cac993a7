// A run's temp files on the instance's small temporary disk: a bucket's go as soon as its state is
// written, the rest with the attempt's folder at its end.
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runExport } from '../../shared/engine';
import { useAzurite } from '../helpers/app';
import { rows } from '../helpers/ci-export';
import { newExportInput, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();

/** The bucket a temp file belongs to (`bucket-3.rows`, `state-3.tsv`), or null for the folder's own. */
const bucketOf = (name: string) => /^(?:bucket|state)-(\d+)\./.exec(name)?.[1] ?? null;

describe("a run's temp files", () => {
  afterEach(() => vi.restoreAllMocks());

  it.each([
    ['read first', false],
    // As on two cores: the largest segment's single profiles go while it is read, with files of their own.
    ['sending early', true],
  ])("%s: each bucket's files go once its state is written, none left when the run reports its end", async (_, early) => {
    vi.spyOn(os, 'availableParallelism').mockReturnValue(2);
    const input = await newExportInput(sandbox().url, [
      { segment: 'A', partitions: [rows(400)] },
      { segment: 'B', partitions: [rows(200)] },
    ]);
    const tempRoot = mkdtempSync(path.join(os.tmpdir(), 'temp-files-test-'));
    const seen: { phase: string; files: string[] }[] = [];

    const result = await runExport({
      ...input,
      bucketTargetBytes: 2048, // a dozen buckets or more
      firstAttempt: early,
      tempRoot,
      onProgress: (p) => {
        const [folder] = readdirSync(tempRoot);
        if (folder) seen.push({ phase: p.phase, files: readdirSync(path.join(tempRoot, folder)).filter((f) => bucketOf(f)) });
      },
    });

    expect(result.complete).toBe(true);
    expect(result.progress.counts).toMatchObject({ profiles: 400, sent: 400 });
    expect(result.progress.buckets.total).toBeGreaterThan(6);
    // Read: every bucket's rows spilled (and what was sent early recorded)…
    const read = seen.find((s) => s.phase === 'sending')!;
    expect(read.files.filter((f) => /^bucket-\d+\.rows$/.test(f)).length).toBeGreaterThan(6);
    if (early) expect(read.files.filter((f) => /^bucket-\d+\.sent$/.test(f)).length).toBeGreaterThan(0);
    // …and all gone by the time the run reports its end, its folder still there.
    expect(seen.at(-1)).toEqual({ phase: 'done', files: [] });
    // The attempt's folder goes at its end.
    expect(readdirSync(tempRoot)).toEqual([]);
    expect(existsSync(tempRoot)).toBe(true);
  });
});
