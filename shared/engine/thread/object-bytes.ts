// Attributes objects as UTF-8 bytes, one after another in one buffer, with where each ends: what
// the engine thread hands the main thread (through shared memory, see shared-ring.ts) and what
// request bodies are made of, so an object's text is not copied into strings or encoded again on
// its way to Braze.
import { grown } from '../spill/bucket-files';
import { NOTHING, takeOver, type Handed, type RingReader, type RingWriter } from './shared-ring';

export interface ObjectList {
  bytes: Uint8Array;
  /** Where each object ends in `bytes` (the next starts there). */
  ends: number[];
}

/** Objects on their way to the other thread. */
export type HandedObjects = Handed & { ends: number[] };

/** Objects received from the other thread, and the functions to call once Braze has answered for the first `count` of them, and for them all. */
export function receiveObjects(
  ring: RingReader,
  handed: HandedObjects,
): { list: ObjectList; releaseAnswered: (count: number) => void; release: () => void } {
  const { bytes, release, releaseTo } = takeOver(ring, handed);
  const { ends } = handed;
  return { list: { bytes, ends }, releaseAnswered: (count) => releaseTo(count > 0 ? ends[count - 1]! : 0), release };
}

/** The i-th object of a list, as a view (no copy). */
export function objectAt(list: ObjectList, i: number): Uint8Array {
  return list.bytes.subarray(i === 0 ? 0 : list.ends[i - 1]!, list.ends[i]!);
}

export class ObjectBytes {
  private bytes: Buffer = Buffer.allocUnsafeSlow(16 * 1024);
  private used = 0;
  private ends: number[] = [];

  get count(): number {
    return this.ends.length;
  }

  /** Adds an object's JSON text; returns where its bytes start (they end at `end`). */
  add(json: string): number {
    // A UTF-16 code unit takes at most 3 bytes in UTF-8.
    this.reserve(json.length * 3);
    const start = this.used;
    this.used += this.bytes.write(json, start);
    this.ends.push(this.used);
    return start;
  }

  /**
   * Adds the object written in place after the others (see LineObjectWriter.writeInto): in
   * `buffer` (this one's, or grown() of it) up to `end`.
   */
  adopt(buffer: Buffer, end: number): void {
    this.bytes = buffer;
    this.used = end;
    this.ends.push(end);
  }

  /** Adds an object already encoded (copied from `source`). */
  addBytes(source: Uint8Array, start: number, end: number): void {
    this.reserve(end - start);
    this.bytes.set(source.subarray(start, end), this.used);
    this.used += end - start;
    this.ends.push(this.used);
  }

  /** Drops every object (the memory stays, for the next ones). */
  clear(): void {
    this.used = 0;
    this.ends = [];
  }

  /** Takes back the object added last. */
  dropLast(): void {
    this.ends.pop();
    this.used = this.ends.length ? this.ends[this.ends.length - 1]! : 0;
  }

  get end(): number {
    return this.used;
  }

  get buffer(): Buffer {
    return this.bytes;
  }

  /**
   * The objects so far, handed to the other thread: copied into the ring (waiting up to
   * `waitForRoomMs` for room), or (no room) in a buffer of their own. Starts afresh.
   */
  handOver(ring: RingWriter, waitForRoomMs = 0): HandedObjects {
    if (this.used === 0) return { ...NOTHING, ends: [] };
    const slice = ring.write(this.bytes.subarray(0, this.used), waitForRoomMs);
    if (!slice) return this.take();
    const ends = this.ends;
    this.used = 0;
    this.ends = [];
    return { slice, ends };
  }

  /** The objects so far, in a buffer of their own (safe to transfer to another thread); starts afresh. */
  take(): ObjectList {
    const list = { bytes: new Uint8Array(this.bytes.buffer, this.bytes.byteOffset, this.used), ends: this.ends };
    // As much room as before: grown from 16 KB again, it would allocate and drop a block of each
    // size up to a bucket's objects, which the thread's allocator keeps in pieces.
    this.bytes = Buffer.allocUnsafeSlow(this.bytes.length);
    this.used = 0;
    this.ends = [];
    return list;
  }

  private reserve(bytes: number): void {
    if (this.used + bytes > this.bytes.length) this.bytes = grown(this.bytes, this.used, bytes);
  }
}
