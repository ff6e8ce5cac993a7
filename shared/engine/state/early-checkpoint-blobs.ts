// The blobs of the checkpoints of what was sent early (see send/early-checkpoints.ts), beside the
// sync state. A checkpoint is one blob (a few, past PART_BYTES): every bucket's state lines, and
// what Braze refused of them, one bucket after another, under a first line that names the buckets
// and their lengths. One PUT per checkpoint instead of one per bucket: a wide 1 M first run's last
// checkpoint was 128 pieces (and as many deletes later), most of the storage's work where reading
// ends, on the cores the run shares with it locally and as round trips on Azure. Pieces per bucket,
// as earlier versions wrote them, are still read: an attempt may continue one that began before
// an upgrade. A checkpoint's bytes are read from the files into two buffers of a block each, in
// turn, each staged before it is read into again: streamed as the files' read streams gave them, a
// 10 M run's checkpoints (~100 MB of state lines) were as many fresh 64 KB buffers, all garbage at
// once until a collection found them, on the main thread as its reading ended.
import { randomBytes } from 'node:crypto';
import type { BlobClient, BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import { mapAtMost } from '../../at-most';
import { readWhole } from '../spill/bucket-files';
import type { BucketHeader } from './state-line';

/** Where a checkpoint has a bucket's lines and refusals: `lines + refused` bytes of `file` from `from`. */
export interface CheckpointRange {
  bucket: number;
  file: string;
  from: number;
  /** Bytes of state lines (of the profiles Braze took). */
  lines: number;
  /** Bytes of refusal lines after them (refusalLine()). */
  refused: number;
}

/** A profile sent early that Braze refused, as a checkpoint records it. */
export interface EarlyRefusal {
  key: string;
  /** The fingerprint of the object refused. */
  fp: string;
  /** Braze's reason, for the rejected-rows report. */
  reason: string;
}

/** The line a checkpoint records a refusal with. */
export const refusalLine = (r: EarlyRefusal): string => `${JSON.stringify([r.key, r.fp, r.reason])}\n`;

/** Adds the refusals of `text` (refusalLine()s) to `byKey`. */
export function addRefusals(text: string, byKey: Map<string, { fp: string; reason: string }>): void {
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [key, fp, reason] = JSON.parse(line) as [string, string, string];
    byKey.set(key, { fp, reason });
  }
}

/** A checkpoint blob's size past which its buckets go on in another: a failed write costs at most this much again. */
export const PART_BYTES = 64 * 1024 * 1024;

/** A checkpoint blob's first line: its buckets, in order, with their lines' and refusals' lengths. */
interface CheckpointIndex {
  header: BucketHeader;
  buckets: [bucket: number, lines: number, refused: number][];
}

const NEWLINE = 0x0a;
const pad = (checkpoint: number) => String(checkpoint).padStart(4, '0');

/** Whether the blob is a checkpoint of what was sent early (this version's or a piece per bucket). */
export const isEarlyCheckpoint = (name: string): boolean => name.includes('.early-');

/** A checkpoint blob to write: its name, its first line, the ranges after it and its length. */
export interface CheckpointBlob {
  name: string;
  /** The buckets it holds. */
  buckets: number[];
  first: Buffer;
  ranges: readonly CheckpointRange[];
  length: number;
}

/**
 * The checkpoint's blobs: the ranges' bytes, from their files, under the index line, at most
 * ~partBytes in each (a bucket is never split).
 */
export function checkpointBlobs(
  checkpoint: number,
  header: BucketHeader,
  ranges: readonly CheckpointRange[],
  partBytes = PART_BYTES,
): CheckpointBlob[] {
  const parts: CheckpointRange[][] = [];
  let size = Infinity;
  for (const range of ranges) {
    if (size >= partBytes) {
      parts.push([]);
      size = 0;
    }
    parts[parts.length - 1]!.push(range);
    size += range.lines + range.refused;
  }
  return parts.map((part, i) => {
    const index: CheckpointIndex = { header, buckets: part.map((r) => [r.bucket, r.lines, r.refused]) };
    const first = Buffer.from(`${JSON.stringify(index)}\n`);
    return {
      name: `buckets.early-${pad(checkpoint)}.${i}.tsv`,
      buckets: part.map((r) => r.bucket),
      first,
      ranges: part,
      length: part.reduce((n, r) => n + r.lines + r.refused, first.length),
    };
  });
}

/** A checkpoint upload's block: a few round trips for a 10 M run's checkpoint, two such buffers while it is written. */
export const BLOCK_BYTES = 4 * 1024 * 1024;

/**
 * Writes the checkpoint blob: one PUT when it fits in a block, else its blocks staged one after
 * another (the next read meanwhile) and then committed, so the blob appears whole or not at all.
 */
export async function uploadCheckpointBlob(blob: BlockBlobClient, part: CheckpointBlob, blockBytes = BLOCK_BYTES): Promise<void> {
  if (!Number.isInteger(blockBytes) || blockBytes < 1) throw new Error(`a block needs at least one byte (${blockBytes})`);
  const oneBlock = part.length <= blockBytes;
  const size = Math.min(blockBytes, part.length);
  const buffer = Buffer.allocUnsafe(size);
  // One block: the second buffer is never read into.
  const buffers = [buffer, oneBlock ? buffer : Buffer.allocUnsafe(size)] as const;
  if (oneBlock) {
    for await (const block of blocksOf(part, buffers)) await blob.upload(block, block.length);
    return;
  }
  // Block IDs of this write's own: should another write of the same blob stage blocks meanwhile, a
  // commit takes only its own writer's blocks (the other's then fails), never a mix of both.
  const upload = randomBytes(6).toString('hex');
  const ids: string[] = [];
  const staging: Promise<unknown>[] = [];
  try {
    for await (const block of blocksOf(part, buffers)) {
      const id = Buffer.from(`${upload}-${String(ids.length).padStart(6, '0')}`).toString('base64');
      ids.push(id);
      const stage = blob.stageBlock(id, block, block.length);
      // Heard now: should it fail while the one before is awaited, it is no unhandled rejection.
      stage.catch(() => undefined);
      staging.push(stage);
      // The buffer read into next is the one staged before this block: its request must be over.
      if (staging.length > 1) await staging[staging.length - 2];
    }
    await staging[staging.length - 1];
  } finally {
    // Failed: the write ends only once none of its requests is under way (the blob may be written again).
    await Promise.allSettled(staging);
  }
  await blob.commitBlockList(ids);
}

/**
 * The blob's bytes, a block at a time, read into `buffers` in turn: a block is read into the
 * buffer of the block before last, so its consumer is done with that one before it asks for more.
 */
async function* blocksOf(part: CheckpointBlob, buffers: readonly [Buffer, Buffer]): AsyncGenerator<Buffer> {
  const pieces = [
    { bytes: part.first, file: null, from: 0, length: part.first.length },
    ...part.ranges.map(({ file, from, lines, refused }) => ({ bytes: null, file, from, length: lines + refused })),
  ];
  let blocks = 0;
  let block = buffers[0];
  let filled = 0;
  for (const { bytes, file, from, length } of pieces) {
    for (let at = from, end = from + length; at < end;) {
      if (filled === block.length) {
        yield block;
        block = buffers[++blocks % 2]!;
        filled = 0;
      }
      const take = Math.min(end - at, block.length - filled);
      if (bytes) bytes.copy(block, filled, at, at + take);
      else await readWhole(file!, take, block, filled, at);
      filled += take;
      at += take;
    }
  }
  if (filled > 0) yield block.subarray(0, filled);
}

/** Where a bucket's checkpoint bytes are: a piece of its own (earlier versions), or a range of a checkpoint blob. */
export type EarlySource =
  | { kind: 'piece' | 'refusals'; name: string }
  | { kind: 'range'; name: string; header: BucketHeader; at: number; lines: number; refused: number };

/**
 * Every checkpoint of what was sent early, by bucket, in the order written: one listing, and the
 * first line of each checkpoint blob.
 */
export async function readCheckpointIndex(container: ContainerClient, exportId: string): Promise<Map<number, EarlySource[]>> {
  const byBucket = new Map<number, EarlySource[]>();
  const add = (bucket: number, source: EarlySource) => {
    const sources = byBucket.get(bucket);
    if (sources) sources.push(source);
    else byBucket.set(bucket, [source]);
  };
  const names: string[] = [];
  for await (const b of container.listBlobsFlat({ prefix: `${exportId}/` })) if (isEarlyCheckpoint(b.name)) names.push(b.name);
  // In checkpoint order (the listing's is by name: a piece per bucket before the blobs of all).
  const checkpointOf = (name: string) => Number(/\.early-(\d+)/.exec(name)![1]);
  names.sort((a, b) => checkpointOf(a) - checkpointOf(b));
  const pieceOf = (name: string) => /\/b(\d+)\.early-/.exec(name);
  // The checkpoint blobs' first lines, a few at a time (a round trip each).
  const indexes = await mapAtMost(names, 8, async (name) =>
    pieceOf(name) ? null : await readIndex(container.getBlobClient(name)),
  );
  for (const [i, name] of names.entries()) {
    const piece = pieceOf(name);
    if (piece) {
      add(Number(piece[1]), { kind: name.endsWith('.refused.jsonl') ? 'refusals' : 'piece', name });
      continue;
    }
    const { index, length } = indexes[i]!;
    let at = length;
    for (const [bucket, lines, refused] of index.buckets) {
      // An empty range would be a GET to the blob's end (a count of 0 is none).
      if (lines + refused > 0) add(bucket, { kind: 'range', name, header: index.header, at, lines, refused });
      at += lines + refused;
    }
  }
  return byBucket;
}

/** A checkpoint blob's first line, and its length with the newline. */
async function readIndex(blob: BlobClient): Promise<{ index: CheckpointIndex; length: number }> {
  // Most are a few KB (a wide export's header may be far more): read more until the line ends.
  for (let count = 64 * 1024; ; count *= 4) {
    const chunks: Buffer[] = [];
    for await (const chunk of rangeBytes(blob, 0, count)) chunks.push(chunk);
    const bytes = Buffer.concat(chunks);
    const end = bytes.indexOf(NEWLINE);
    if (end !== -1) return { index: JSON.parse(bytes.toString('utf8', 0, end)) as CheckpointIndex, length: end + 1 };
    if (bytes.length < count) throw new Error(`the checkpoint ${blob.name} has no first line`);
  }
}

/** `count` bytes of the blob from `at` (to its end: undefined), in chunks as they come. */
export async function* rangeBytes(blob: BlobClient, at: number, count: number | undefined): AsyncGenerator<Buffer> {
  yield* (await blob.download(at, count)).readableStreamBody as AsyncIterable<Buffer>;
}
