// Bytes handed between the main thread and the engine thread through shared memory, instead of a
// fresh ArrayBuffer per message. Why: each ArrayBuffer a thread receives or allocates counts as new
// external memory in V8, and on the main thread that churn (~40 MB/s at full speed: CSV chunks,
// objects to send) started a full mark-compact about every 250 ms, several core-seconds per
// million profiles on a 2-core machine. One thread writes; the other reads and releases, and
// space comes back in the order it was written, whatever order the reader is done in.
//
// The ring is only an optimisation: when it has no room, `write` says so and the caller hands the
// bytes over the ordinary way (a transferred copy).

import { MessageChannel, type MessagePort } from 'node:worker_threads';

/** The shared memory behind a ring, posted once to the other thread. */
export interface RingShare {
  data: SharedArrayBuffer;
  /** [0]: bytes released so far by the reader (mod 2^32). */
  control: SharedArrayBuffer;
}

/** Where a write landed: posted instead of the bytes. */
export interface RingSlice {
  at: number;
  length: number;
  /** Bytes left unused at the end of the ring before this slice (it wrapped to the start). */
  skipped: number;
}

export function createRing(bytes: number): RingShare {
  return { data: new SharedArrayBuffer(bytes), control: new SharedArrayBuffer(4) };
}

export class RingWriter {
  private readonly data: Uint8Array;
  private readonly released: Int32Array;
  private head = 0;
  /** Bytes handed out so far (mod 2^32), gaps included. */
  private written: number;

  /** On a ring used before (kept with its thread for the next run), writing starts where releasing stands. */
  constructor(share: RingShare) {
    this.data = new Uint8Array(share.data);
    this.released = new Int32Array(share.control);
    this.written = Atomics.load(this.released, 0) >>> 0;
  }

  /** Everything written has been released: the ring may serve another run. */
  get drained(): boolean {
    return this.written === Atomics.load(this.released, 0) >>> 0; // both mod 2^32
  }

  /**
   * Copies `bytes` in and says where; null when the ring has no room for them, now or, given
   * `waitForRoomMs`, once that wait is over. Waiting blocks this thread until the reader releases
   * enough (a worker thread's writer only, and only where the reader's releases never wait for what
   * this thread writes next: see bucket-step.ts).
   */
  write(bytes: Uint8Array, waitForRoomMs = 0): RingSlice | null {
    if (waitForRoomMs === 0 || bytes.length === 0 || bytes.length > this.data.length) return this.writeNow(bytes);
    const deadline = Date.now() + waitForRoomMs;
    for (;;) {
      const seen = Atomics.load(this.released, 0);
      const slice = this.writeNow(bytes);
      const left = deadline - Date.now();
      if (slice || left <= 0) return slice;
      Atomics.wait(this.released, 0, seen, left); // woken by the reader's release (or at once if it came meanwhile)
    }
  }

  private writeNow(bytes: Uint8Array): RingSlice | null {
    const size = this.data.length;
    const length = bytes.length;
    const inUse = (this.written - Atomics.load(this.released, 0)) >>> 0;
    if (inUse === 0) this.head = 0; // all given back: start over, nothing to skip
    const wraps = this.head + length > size;
    const skipped = wraps ? size - this.head : 0;
    if (length === 0 || length > size || inUse + skipped + length > size) return null;
    const at = wraps ? 0 : this.head;
    this.data.set(bytes, at);
    this.head = at + length;
    this.written = (this.written + skipped + length) >>> 0;
    return { at, length, skipped };
  }
}

/**
 * `next`, written right after `slice` with nothing skipped, as one slice with it (the reader gives
 * back the same bytes either way); null when the two are apart (`next` wrapped to the start).
 */
export function joined(slice: RingSlice, next: RingSlice): RingSlice | null {
  return next.skipped === 0 && next.at === slice.at + slice.length ? { ...slice, length: slice.length + next.length } : null;
}

/** A slice read and not yet given back whole: its size (the bytes skipped before it included), how much of it the reader is done with, and how much of that is given back. */
interface ReadSlice {
  size: number;
  done: number;
  given: number;
}

export class RingReader {
  private readonly data: Uint8Array;
  private readonly released: Int32Array;
  /** Slices read and not yet given back whole, in the order written. */
  private readonly pending: ReadSlice[] = [];

  constructor(share: RingShare) {
    this.data = new Uint8Array(share.data);
    this.released = new Int32Array(share.control);
  }

  /** Nothing read is waiting to be released: the ring may serve another run. */
  get drained(): boolean {
    return this.pending.length === 0;
  }

  /**
   * The slice's bytes (a view: valid until released), the function that releases them, and one that
   * releases their first `end` bytes before the rest (the objects Braze has answered, while it
   * answers the others). Slices must be read in the order they were written, and each released
   * (once released, releasing it again, or a part of it, changes nothing).
   */
  read(slice: RingSlice): { bytes: Uint8Array; release: () => void; releaseTo: (end: number) => void } {
    const entry: ReadSlice = { size: slice.skipped + slice.length, done: 0, given: 0 };
    this.pending.push(entry);
    return {
      bytes: this.data.subarray(slice.at, slice.at + slice.length),
      release: () => this.done(entry, entry.size),
      releaseTo: (end) => this.done(entry, Math.min(entry.size, slice.skipped + end)),
    };
  }

  /** Space comes back in the order written: up to the first slice the reader is not done with. */
  private done(entry: ReadSlice, upTo: number): void {
    if (upTo <= entry.done) return;
    entry.done = upTo;
    let freed = 0;
    while (this.pending.length) {
      const first = this.pending[0]!;
      freed += first.done - first.given;
      first.given = first.done;
      if (first.done < first.size) break;
      this.pending.shift();
    }
    if (freed) {
      Atomics.add(this.released, 0, freed);
      Atomics.notify(this.released, 0); // a writer waiting for room
    }
  }
}

/** Bytes on their way to the other thread: in the ring, or (no room there) in a buffer transferred with the message. */
export type Handed = { slice: RingSlice } | { bytes: Uint8Array };

/**
 * Nothing to hand over. Not an empty view of a builder's buffer: a view crosses with all of its
 * memory, copied or transferred, and the receiving thread counts every such buffer as new memory.
 */
export const NOTHING: Handed = { bytes: new Uint8Array(0) };

/** Bytes handed to the other thread: copied into the ring, or (no room) as they are, transferred (so they must be memory of their own). */
export function handOver(ring: RingWriter, bytes: Uint8Array): Handed {
  if (bytes.length === 0) return NOTHING;
  const slice = ring.write(bytes);
  return slice ? { slice } : { bytes };
}

/**
 * A buffer that is the whole of its ArrayBuffer (not shared memory, not a slice of Node's Buffer
 * pool, whose memory never moves): the only kind whose memory freeNow may give back.
 */
export function ownsItsMemory(bytes: Uint8Array): boolean {
  return (
    bytes.byteOffset === 0 &&
    bytes.byteLength > Buffer.poolSize &&
    bytes.byteLength === bytes.buffer.byteLength &&
    !(bytes.buffer instanceof SharedArrayBuffer)
  );
}

/** Where freeNow sends memory: a channel closed at the other end, which drops what it is sent. */
let sink: MessagePort | null = null;

/**
 * Gives `bytes`' memory back now, not at the next garbage collection, when they are the whole of
 * memory of their own; they must not be read again (they are left empty). Transferring memory
 * detaches it from its buffer, V8 stops counting it as this thread's external memory, and the
 * closed channel drops the message and with it the memory (a closed channel's postMessage still
 * transfers, as the HTML structured-clone rules Node follows say, and does not throw).
 */
export function freeNow(bytes: Uint8Array): void {
  if (!ownsItsMemory(bytes)) return;
  if (!sink) {
    const { port1, port2 } = new MessageChannel();
    port2.close();
    port1.unref();
    sink = port1;
  }
  try {
    sink.postMessage(null, [bytes.buffer as ArrayBuffer]);
  } catch {
    // Not given back: the memory waits for a garbage collection, as any other buffer's.
  }
}

/** The buffers a message carrying `handed` must transfer. */
export const transferredWith = (handed: Handed): ArrayBuffer[] =>
  'bytes' in handed && handed.bytes.length > 0 ? [handed.bytes.buffer as ArrayBuffer] : [];

/** The handed bytes on the receiving thread, and the function to call once done with them. */
export function takeOver(
  ring: RingReader,
  handed: Handed,
): { bytes: Uint8Array; release: () => void; releaseTo: (end: number) => void } {
  return 'slice' in handed
    ? ring.read(handed.slice)
    : { bytes: handed.bytes, release: () => undefined, releaseTo: () => undefined };
}
