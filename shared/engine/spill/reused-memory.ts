// Memory the bucket step uses again for each bucket: grow-only typed arrays and byte buffers, one
// per named use. A bucket's spill bytes, its indexes and its state take a few MB each; allocated
// and dropped per bucket, blocks that size come from glibc's arenas once its threshold for giving
// them mappings of their own has risen to the largest freed, and the arenas fragment: a 10 M run's
// RSS climbed ~45 MB through sending with neither thread's heap growing.

/** The uses, each with memory of its own (views of one use are valid until its next call). */
export type ReusedUse =
  | 'spill'
  | 'state'
  /** A file of what was sent early, read to be decoded at once. */
  | 'early'
  | `profiles.${'keyHash' | 'keyFrom' | 'keyTo' | 'firstRow' | 'lastRow' | 'sumA' | 'sumB' | 'rowStart' | 'nextRow' | 'slots' | 'ascii'}`
  | `entries.${'lineStart' | 'lineEnd' | 'keyEnd' | 'keyHash' | 'slots' | 'ascii' | 'status'}`;

export class ReusedMemory {
  private readonly blocks = new Map<ReusedUse, ArrayBuffer>();

  /**
   * `bytes` bytes of the use's memory, grown (to a quarter more than asked, so a slightly larger
   * bucket does not grow it again) when it has fewer. Its contents are whatever the last use left.
   */
  private block(use: ReusedUse, bytes: number): ArrayBuffer {
    let block = this.blocks.get(use);
    if (!block || block.byteLength < bytes) {
      block = new ArrayBuffer(bytes + (bytes >> 2));
      this.blocks.set(use, block);
    }
    return block;
  }

  /** A Buffer of `length` bytes, contents undefined. */
  buffer(use: ReusedUse, length: number): Buffer {
    return Buffer.from(this.block(use, length), 0, length);
  }

  /** `length` bytes, set to `fill`. */
  bytes(use: ReusedUse, length: number, fill = 0): Uint8Array {
    return new Uint8Array(this.block(use, length), 0, length).fill(fill);
  }

  /** `length` 32-bit integers, set to `fill`. */
  ints(use: ReusedUse, length: number, fill = 0): Int32Array {
    return new Int32Array(this.block(use, length * 4), 0, length).fill(fill);
  }
}

/** Memory of its own for each call: for a one-off index (the verifier's, a test's). */
export const freshMemory = (): ReusedMemory => new ReusedMemory();

/** Where a file read to be decoded at once goes: the use's memory. */
export const readInto =
  (memory: ReusedMemory, use: ReusedUse) =>
  (length: number): Buffer =>
    memory.buffer(use, length);
