// A bucket's state blob written in blocks (state-line.ts): a run that changes a few of a bucket's
// profiles adds a block with the change to the blob instead of writing the blob again whole. At 1 %
// changed, the whole bucket blobs were ~42 MB written every run at 1 M profiles (420 MB at 10 M),
// against ~0.6 MB of change; the blob is read whole either way. Written whole again once its later
// blocks grow past a share of the first, so reading stays within that share of the state's size.
import type { BucketHeader } from './state-line';

/** A state blob written in blocks: the first holds its state whole, each later one a change to it (state-line.ts). */
export interface StateBlocks {
  /** The blocks' IDs, in order. */
  ids: string[];
  /** Bytes of the first block. */
  firstBytes: number;
  /** Bytes of the blocks after it. */
  laterBytes: number;
}

/** The later blocks' bytes, at most, as a share of the first block's: the blob is written whole past it. */
export const LATER_BLOCKS_SHARE = 1 / 8;
/** Blocks a blob has at most (Azure Storage allows 50,000): each later block's header is read with it. */
export const MOST_BLOCKS = 64;

/**
 * The blocks of the blob that a change of `bytes` (about) is added to as a later block, under
 * `header`; null when the blob is to be written whole: it has no blocks, was written under other
 * settings (its lines' field bits and membership read by another header), or its later blocks
 * would grow past their share.
 */
export function blocksToAddTo(
  previous: BucketHeader & { blocks: StateBlocks | null },
  header: BucketHeader,
  bytes: number,
): string[] | null {
  const { blocks } = previous;
  if (!blocks || blocks.ids.length >= MOST_BLOCKS || previous.sentBy !== undefined) return null;
  if (blocks.laterBytes + bytes > blocks.firstBytes * LATER_BLOCKS_SHARE) return null;
  const sameSettings =
    previous.definition === header.definition &&
    JSON.stringify(previous.fields) === JSON.stringify(header.fields) &&
    JSON.stringify(previous.membership) === JSON.stringify(header.membership);
  return sameSettings ? blocks.ids : null;
}
