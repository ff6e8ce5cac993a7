// Temp files by hash bucket: the engine's spill. One file per bucket and kind of line; small
// per-bucket buffers (32 KB each) keep memory flat and file handles few, whatever the bucket count.
import { appendFileSync, closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { open, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

const NEWLINE = 0x0a;

/**
 * The kinds of spill file rows go to: one per reading thread, so threads never write the same
 * file. The bucket step reads them in this order (rows of a segment keep their order: see
 * engine-threads.ts).
 */
export const ROW_SPILLS = ['rows', 'rows-2'] as const;

/** The file of a bucket's lines of one kind, in `dir`. */
export const bucketFile = (dir: string, bucket: number, kind: string) => path.join(dir, `bucket-${bucket}.${kind}`);

/** Removes a bucket's files of these kinds from `dir` (those there are). */
export async function removeBucketFiles(dir: string, bucket: number, kinds: readonly string[]): Promise<void> {
  // unlink, not rm: rm looks at each path first (an lstat more per file, through libuv's pool).
  await Promise.all(kinds.map((kind) => unlink(bucketFile(dir, bucket, kind)).catch(nothingWritten)));
}

/** Calls `onLine` with where each line of `text` runs (each ends in a newline). */
function eachLine(text: string, onLine: (text: string, start: number, end: number) => void): void {
  let start = 0;
  for (let end = text.indexOf('\n'); end !== -1; start = end + 1, end = text.indexOf('\n', start)) onLine(text, start, end);
}

/** Bytes [from, to) of `bytes`: a part of a buffer, named without copying it. */
export interface ByteRange {
  bytes: Uint8Array;
  from: number;
  to: number;
}

/**
 * Copies bytes [from, to) of `b` to `out` at `at`; returns where they end. A loop costs ~1.5 ns a
 * byte, Buffer.copy ~50 ns a call whatever the length: the loop only for the shortest (an ID, a
 * number), the call for a wide row's text.
 */
export function copyBytes(b: Buffer, from: number, to: number, out: Buffer, at: number): number {
  if (to - from > 32) return at + b.copy(out, at, from, to);
  for (let i = from; i < to; i++) out[at++] = b[i]!;
  return at;
}

/**
 * A buffer with room for `more` bytes after the first `used` of `bytes` (copied), at least twice
 * as big: memory of its own (not the Buffer pool's), so what is in it can be transferred.
 */
export function grown(bytes: Buffer, used: number, more: number): Buffer {
  const bigger = Buffer.allocUnsafeSlow(Math.max(bytes.length * 2, used + more));
  bytes.copy(bigger, 0, 0, used);
  return bigger;
}

/** Reads `size` bytes of `file` (from `position`: by default the whole file) into `bytes` at `at`. */
export async function readWhole(file: string, size: number, bytes: Buffer, at = 0, position = 0): Promise<void> {
  const handle = await open(file, 'r');
  try {
    for (let done = 0; done < size;) {
      const { bytesRead } = await handle.read(bytes, at + done, size - done, position + done);
      if (bytesRead === 0) throw new Error(`${file} is shorter than its size`);
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

/** Reads `size` bytes of `file`, from its start, into `bytes` at `at`, the thread blocked meanwhile (see BucketFiles.readBytesSync). */
export function readWholeSync(file: string, size: number, bytes: Buffer, at = 0): void {
  const fd = openSync(file, 'r');
  try {
    for (let done = 0; done < size;) {
      const bytesRead = readSync(fd, bytes, at + done, size - done, done);
      if (bytesRead === 0) throw new Error(`${file} is shorter than its size`);
      done += bytesRead;
    }
  } finally {
    closeSync(fd);
  }
}

/** The whole of `file`, read into the memory `into` gives for its size, the thread blocked meanwhile (see BucketFiles.readBytesSync). */
export function readFileIntoSync(file: string, into: (length: number) => Buffer): Buffer {
  const { size } = statSync(file);
  const bytes = into(size);
  readWholeSync(file, size, bytes);
  return bytes;
}

/** Writes all of `bytes` to the file `fd` is open on (a write may take only part of them). */
export function writeWhole(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at);
}

/** writeWhole through libuv's pool: all of `bytes`, at the file's current position. */
export async function writeWholeTo(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += (await handle.write(bytes, at)).bytesWritten;
}

/** A bucket file that does not exist had nothing written to it: no bytes. */
function nothingWritten(e: unknown): number {
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
  throw e;
}

/** A bucket's lines waiting to be written: bytes[0, used), `view` a DataView over `bytes`. */
export interface SpillBuffer {
  readonly bytes: Buffer;
  used: number;
  readonly view: DataView<ArrayBufferLike>;
}

/** A bucket's buffer: 32 KB, fewer where many buckets would make one kind of file's buffers more than this. */
const BUFFERS_BUDGET_BYTES = 4 * 1024 * 1024;
const MAX_BUFFER_BYTES = 32 * 1024;
const MIN_BUFFER_BYTES = 4 * 1024;

/**
 * Bytes each bucket's buffer takes, for `bucketCount` buckets: 32 KB up to 128 buckets, then less.
 * A first run that sends early writes four kinds of file at once; with a 10 M snapshot's 256
 * buckets and 32 KB each, 32 MB of its engine thread's memory were these buffers.
 */
export function bufferBytesFor(bucketCount: number): number {
  return Math.max(MIN_BUFFER_BYTES, Math.min(MAX_BUFFER_BYTES, Math.floor(BUFFERS_BUDGET_BYTES / bucketCount)));
}

/**
 * Files a reading thread's spill keeps open (the buckets after these are opened for each append):
 * a 10 M snapshot has 256 buckets, and two threads may read.
 */
export const MAX_OPEN_FILES = 256;

export class BucketFiles {
  // Lines are copied into a per-bucket byte buffer at once, so their strings die young: buffered
  // strings would outlive several garbage collections and be promoted, which is what made GC the
  // engine's largest cost.
  /** By bucket (an array: looked up for every row). */
  private readonly buffers: (SpillBuffer | undefined)[] = [];
  private readonly bufferBytes: number;
  /**
   * With the bucket count known, every bucket's buffer is a piece of one block: a thousand buffers
   * of 16 KB freed after reading left holes in the thread's allocator that the bucket step's blocks
   * of a few MB could not use, and its arena grew by them (~20 MB at 10 M profiles).
   */
  private block: Buffer | null = null;
  /** By bucket, where files are kept open: the file's descriptor, opened to append at its first write. */
  private readonly fds: (number | undefined)[] | null;
  private openFiles = 0;
  private readonly maxOpenFiles: number;
  /** Where the last write() put the line's bytes (reused; valid until the next write). */
  readonly lastLine: { bytes: Buffer; start: number; end: number } = { bytes: Buffer.alloc(0), start: 0, end: 0 };

  constructor(
    private readonly dir: string,
    private readonly kind: string,
    /** How many buckets lines are written to (sizes their buffers); unknown (0): the largest buffers. */
    private readonly bucketCount = 0,
    /**
     * Up to this many buckets' files kept open from their first write until close() (remove()
     * closes its own), the rest opened for each append: an append that opens and closes the file
     * cost ~0.1 CPU-s of reading 1 M wide rows. Only for a writer sure to be closed, or on a worker
     * thread, whose descriptors are closed when it ends (Node's Worker `trackUnmanagedFds`, on by
     * default).
     */
    keptOpen = 0,
  ) {
    this.bufferBytes = bucketCount > 0 ? bufferBytesFor(bucketCount) : MAX_BUFFER_BYTES;
    this.fds = keptOpen > 0 ? [] : null;
    this.maxOpenFiles = keptOpen;
  }

  /** A bucket's buffer: its piece of the block (bucket count known), or memory of its own. */
  private newBuffer(bucket: number): Buffer {
    const size = this.bufferBytes;
    if (bucket >= this.bucketCount) return Buffer.allocUnsafe(size);
    this.block ??= Buffer.allocUnsafeSlow(size * this.bucketCount);
    return this.block.subarray(bucket * size, (bucket + 1) * size);
  }

  private file(bucket: number) {
    return bucketFile(this.dir, bucket, this.kind);
  }

  /** Appends one line (without its newline; it must not hold one). */
  write(bucket: number, line: string): void {
    // A UTF-16 code unit takes at most 3 bytes in UTF-8.
    const b = this.lineRoom(bucket, line.length * 3 + 1);
    if (!b) {
      const bytes = Buffer.from(`${line}\n`);
      this.append(bucket, bytes);
      this.setLastLine(bytes, 0, bytes.length - 1);
      return;
    }
    const start = b.used;
    b.used += b.bytes.write(line, b.used);
    this.setLastLine(b.bytes, start, b.used);
    b.bytes[b.used++] = NEWLINE;
  }

  /** Appends one line given as bytes [start, end) (without its newline; it must not hold one). */
  writeBytes(bucket: number, bytes: Buffer, start: number, end: number): void {
    const b = this.lineRoom(bucket, end - start + 1);
    if (!b) {
      this.append(bucket, Buffer.concat([bytes.subarray(start, end), Buffer.from('\n')]));
      return;
    }
    b.used = copyBytes(bytes, start, end, b.bytes, b.used);
    b.bytes[b.used++] = NEWLINE;
  }

  /**
   * The bucket's buffer with room for a line of at most `length` bytes, its newline included
   * (flushed first if need be), for the caller to write the line into from `used` and then endLine()
   * it; null when a line that long goes straight to the file.
   */
  lineRoom(bucket: number, length: number): SpillBuffer | null {
    let b = this.buffers[bucket];
    if (!b) {
      const bytes = this.newBuffer(bucket);
      this.buffers[bucket] = b = { bytes, used: 0, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.length) };
    }
    if (b.used + length <= b.bytes.length) return b;
    this.flush(bucket, b);
    return length <= b.bytes.length ? b : null;
  }

  /** Ends the line written into lineRoom()'s buffer: it runs to `end`, and its newline follows. */
  endLine(b: SpillBuffer, end: number): void {
    // Bytes written past a buffer's end are dropped without a word: a line that overran its room
    // stops the run rather than lose its end.
    if (end >= b.bytes.length)
      throw new Error(`a spill line overran the room measured for it (${end} of ${b.bytes.length} bytes)`);
    b.bytes[end] = NEWLINE;
    b.used = end + 1;
  }

  private setLastLine(bytes: Buffer, start: number, end: number): void {
    this.lastLine.bytes = bytes;
    this.lastLine.start = start;
    this.lastLine.end = end;
  }

  private flush(bucket: number, b: SpillBuffer): void {
    if (b.used === 0) return;
    this.append(bucket, b.bytes.subarray(0, b.used));
    b.used = 0;
  }

  /** Appends bytes to the bucket's file: synchronous on purpose, a local append of 32 KB is cheaper than a promise per row. */
  private append(bucket: number, bytes: Uint8Array): void {
    let fd = this.fds?.[bucket];
    if (fd === undefined && this.fds && this.openFiles < this.maxOpenFiles) {
      fd = this.fds[bucket] = openSync(this.file(bucket), 'a');
      this.openFiles++;
    }
    if (fd === undefined) return appendFileSync(this.file(bucket), bytes);
    writeWhole(fd, bytes);
  }

  /** Closes the bucket's file, if kept open. */
  private closeFile(bucket: number): void {
    const fd = this.fds?.[bucket];
    if (fd === undefined) return;
    this.fds![bucket] = undefined;
    this.openFiles--;
    closeSync(fd);
  }

  close(): void {
    this.flushAll();
    this.buffers.length = 0;
    this.block = null;
    this.closeFiles();
  }

  /** Closes the files kept open (a later write opens its file again): what a writer that failed does. */
  closeFiles(): void {
    this.fds?.forEach((_, bucket) => this.closeFile(bucket));
  }

  /** Writes out what the buffers hold, so the files have every line written so far. */
  flushAll(): void {
    this.buffers.forEach((b, bucket) => {
      if (b) this.flush(bucket, b);
    });
  }

  /** The bytes in each bucket's file (0..count-1), as of now (flushAll first). */
  sizes(count: number): number[] {
    return Array.from({ length: count }, (_, bucket) => {
      try {
        return statSync(this.file(bucket)).size;
      } catch {
        return 0;
      }
    });
  }

  /**
   * Bytes [from, to) of the bucket's file (whole lines, when both are sizes()), read into `into`'s
   * memory (grown when too small: the memory used is returned, the bytes are its first to − from).
   */
  async readRange(bucket: number, from: number, to: number, into: Buffer = Buffer.alloc(0)): Promise<Buffer> {
    const bytes = into.length >= to - from ? into : Buffer.allocUnsafeSlow(to - from);
    if (to > from) await readWhole(this.file(bucket), to - from, bytes, 0, from);
    return bytes;
  }

  /** Calls `onLine` for each line of the bucket, in the order written (by any BucketFiles of this kind, on any thread, once closed). */
  async read(bucket: number, onLine: (line: string) => void, into?: (length: number) => Buffer): Promise<void> {
    eachLine(await this.readText(bucket, into), (text, start, end) => onLine(text.slice(start, end)));
  }

  /**
   * The bucket's lines in several kinds of file, one after the other, as one buffer: joining
   * buffers read one by one would hold the bucket's lines three times over instead of twice.
   */
  static async readBytes(
    files: BucketFiles[],
    bucket: number,
    /** Where the bytes go (the bucket step's memory, used again for each bucket). */
    into: (length: number) => Buffer = Buffer.allocUnsafe,
  ): Promise<Buffer> {
    const sizes = await Promise.all(files.map((f) => stat(f.file(bucket)).then((s) => s.size, nothingWritten)));
    const bytes = into(sizes.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const [i, f] of files.entries()) {
      // A file is complete once its writer closed it, so its size is the bytes to read.
      if (sizes[i]! > 0) await readWhole(f.file(bucket), sizes[i]!, bytes, at);
      at += sizes[i]!;
    }
    return bytes;
  }

  /**
   * As readBytes, the thread blocked meanwhile: for the engine thread's bucket step, which waits for
   * the bytes anyway. Through libuv's pool, shared with the main thread's file work (staging, state
   * downloads), the reads waited: in a wide change run's weighing (128 buckets) the thread idled
   * 23 % of the time, 9 % with them synchronous (CPU profiles).
   */
  static readBytesSync(files: BucketFiles[], bucket: number, into: (length: number) => Buffer): Buffer {
    const sizes = files.map((f) => statSync(f.file(bucket), { throwIfNoEntry: false })?.size ?? 0);
    const bytes = into(sizes.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const [i, f] of files.entries()) {
      // A file is complete once its writer closed it, so its size is the bytes to read.
      if (sizes[i]! > 0) readWholeSync(f.file(bucket), sizes[i]!, bytes, at);
      at += sizes[i]!;
    }
    return bytes;
  }

  /** Deletes the bucket's file (once read for the last time: the disk it took is free again). */
  async remove(bucket: number): Promise<void> {
    this.closeFile(bucket);
    await rm(this.file(bucket), { force: true });
  }

  /** The bucket's lines as written, each ending in a newline ('' when there are none). */
  async readText(bucket: number, into?: (length: number) => Buffer): Promise<string> {
    return (await BucketFiles.readBytes([this], bucket, into)).toString('utf8');
  }
}
