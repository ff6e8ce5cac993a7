import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  createRing,
  freeNow,
  joined,
  ownsItsMemory,
  RingReader,
  RingWriter,
  takeOver,
  transferredWith,
} from '../../shared/engine/thread/shared-ring';

const bytesOf = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe('shared ring', () => {
  it('hands bytes over unchanged, and says when it has no room instead of overwriting', () => {
    const share = createRing(100);
    const writer = new RingWriter(share);
    const reader = new RingReader(share);
    const a = writer.write(bytesOf(40, 1))!;
    const b = writer.write(bytesOf(40, 2))!;
    expect(writer.write(bytesOf(40, 3))).toBeNull(); // 120 bytes would not fit in 100
    expect([...reader.read(a).bytes]).toEqual([...bytesOf(40, 1)]);
    expect([...reader.read(b).bytes]).toEqual([...bytesOf(40, 2)]);
  });

  it('gives space back in the order written, whatever order the reader is done in', () => {
    const share = createRing(100);
    const writer = new RingWriter(share);
    const reader = new RingReader(share);
    const first = reader.read(writer.write(bytesOf(50, 1))!);
    const second = reader.read(writer.write(bytesOf(50, 2))!);
    second.release();
    expect(writer.write(bytesOf(10, 3))).toBeNull(); // the first 50 bytes are still in use
    expect([...first.bytes]).toEqual([...bytesOf(50, 1)]);
    first.release();
    expect(writer.write(bytesOf(100, 3))).not.toBeNull(); // both came back
  });

  it('says when it is drained; a ring used before serves a new writer and reader (the next run) with all its room', () => {
    const share = createRing(100);
    const writer = new RingWriter(share);
    const reader = new RingReader(share);
    const held = reader.read(writer.write(bytesOf(60, 1))!);
    expect([writer.drained, reader.drained]).toEqual([false, false]); // bytes in use: not for another run
    held.release();
    expect([writer.drained, reader.drained]).toEqual([true, true]);
    const nextWriter = new RingWriter(share);
    const nextReader = new RingReader(share);
    const whole = nextWriter.write(bytesOf(100, 2))!; // no room lost to the first run's bytes
    expect([...nextReader.read(whole).bytes]).toEqual([...bytesOf(100, 2)]);
  });

  it('joins writes that follow each other into one slice, read and given back as one; not across a wrap', () => {
    const share = createRing(100);
    const writer = new RingWriter(share);
    const reader = new RingReader(share);
    const first = reader.read(writer.write(bytesOf(40, 1))!);
    const both = joined(writer.write(bytesOf(30, 2))!, writer.write(bytesOf(20, 3))!)!;
    first.release();
    const wrapped = writer.write(bytesOf(30, 4))!; // 90 + 30 > 100: it starts over at 0
    expect(joined(both, wrapped)).toBeNull();
    const read = reader.read(both);
    expect([...read.bytes]).toEqual([...bytesOf(30, 2), ...bytesOf(20, 3)]);
    read.release();
    reader.read(wrapped).release();
    expect(writer.write(bytesOf(100, 5))).not.toBeNull(); // all of it came back
  });

  it('wraps to the start when a write does not fit at the end, and the bytes skipped come back with it', () => {
    const share = createRing(100);
    const writer = new RingWriter(share);
    const reader = new RingReader(share);
    const a = reader.read(writer.write(bytesOf(60, 1))!);
    const b = reader.read(writer.write(bytesOf(20, 2))!); // at 60..80
    a.release();
    const slice = writer.write(bytesOf(40, 3))!;
    expect(slice).toEqual({ at: 0, length: 40, skipped: 20 });
    const c = reader.read(slice);
    expect(writer.write(bytesOf(30, 4))).toBeNull(); // 20 in use + 20 skipped + 40 in use
    b.release();
    expect(writer.write(bytesOf(30, 5))).toEqual({ at: 40, length: 30, skipped: 0 });
    expect([...c.bytes]).toEqual([...bytesOf(40, 3)]);
    c.release(); // its 20 skipped bytes come back too
    expect(writer.write(bytesOf(30, 6))).toEqual({ at: 70, length: 30, skipped: 0 });
  });

  // Counting 2^32 bytes would take long: the counters start just below where they overflow instead.
  it.each([0x7ffff000, 0xfffff000])('keeps its counts right past where they overflow (from %d)', (start) => {
    const share = createRing(4096);
    const writer = new RingWriter(share);
    const reader = new RingReader(share);
    new Int32Array(share.control)[0] = start | 0;
    (writer as unknown as { written: number }).written = start;
    for (let i = 0; i < 5000; i++) {
      const slice = writer.write(bytesOf(1000, i % 251));
      expect(slice).not.toBeNull();
      const { bytes, release } = reader.read(slice!);
      expect(bytes[999]).toBe(i % 251);
      release();
    }
  });

  it('falls back to a buffer of its own, transferred with the message, when there is no room', () => {
    const reader = new RingReader(createRing(16));
    const own = { bytes: bytesOf(8, 7) };
    expect(transferredWith(own)).toEqual([own.bytes.buffer]);
    expect(transferredWith({ slice: { at: 0, length: 1, skipped: 0 } })).toEqual([]);
    const { bytes, release } = takeOver(reader, own);
    expect(bytes).toBe(own.bytes);
    release(); // nothing to give back
  });

  it('takes a buffer for memory of its own only when it is the whole of it', () => {
    expect(ownsItsMemory(Buffer.allocUnsafeSlow(65_536))).toBe(true); // as a socket's body chunk
    expect(ownsItsMemory(new Uint8Array(65_536))).toBe(true);
    expect(ownsItsMemory(Buffer.allocUnsafeSlow(65_536).subarray(1))).toBe(false); // a view into more
    expect(ownsItsMemory(Buffer.allocUnsafeSlow(65_536).subarray(0, 100))).toBe(false);
    expect(ownsItsMemory(Buffer.allocUnsafe(100))).toBe(false); // a slice of Node's Buffer pool
    expect(ownsItsMemory(Buffer.allocUnsafeSlow(Buffer.poolSize))).toBe(false); // the pool's size: never moved
    expect(ownsItsMemory(new Uint8Array(new SharedArrayBuffer(65_536)))).toBe(false);
  });

  it('gives memory of its own back at once, and leaves any other bytes alone', () => {
    const own = Array.from({ length: 160 }, () => Buffer.allocUnsafeSlow(65_536).fill(1)); // 10 MB
    // Measured across the frees alone: files share this process, and a collection during the
    // allocations above (others' garbage given back) must not count either way.
    const beforeFree = process.memoryUsage().external;
    own.forEach(freeNow);
    expect(own.every((b) => b.byteLength === 0)).toBe(true);
    expect(beforeFree - process.memoryUsage().external).toBeGreaterThan(9_000_000); // at once, no GC needed
    const view = Buffer.allocUnsafeSlow(65_536).fill(2).subarray(1);
    freeNow(view);
    expect(view.byteLength).toBe(65_535);
    expect(view[0]).toBe(2);
  });

  it('gives a slice back a part at a time, in order: parts done after the first slice not done wait for it', () => {
    const share = createRing(100);
    const writer = new RingWriter(share);
    const reader = new RingReader(share);
    const a = reader.read(writer.write(bytesOf(60, 1))!);
    const b = reader.read(writer.write(bytesOf(30, 2))!); // at 60..90
    b.releaseTo(30); // all of b, but a comes first
    expect(writer.write(bytesOf(11, 3))).toBeNull(); // 10 bytes free at the end, none at the start
    a.releaseTo(40);
    a.releaseTo(30); // less than before: nothing changes
    const c = writer.write(bytesOf(40, 3))!; // wraps: a's first 40 bytes
    expect([c.at, c.skipped]).toEqual([0, 10]);
    expect([...a.bytes.subarray(40)]).toEqual([...bytesOf(20, 1)]); // a's rest untouched
    expect(writer.write(bytesOf(1, 4))).toBeNull();
    a.release(); // a's rest, and b with it
    expect(writer.write(bytesOf(50, 4))).not.toBeNull();
  });

  it("gives a slice's first part back while the rest is in use, and the rest (with the gap before a wrapped slice) once it is done", () => {
    const share = createRing(100);
    const writer = new RingWriter(share);
    const reader = new RingReader(share);
    const a = reader.read(writer.write(bytesOf(90, 1))!);
    a.releaseTo(50); // 0..50 free
    const b = reader.read(writer.write(bytesOf(40, 2))!); // 90 + 40 > 100: wraps to 0, skipping 10
    expect(b.bytes.byteOffset).toBe(0);
    expect([...a.bytes.subarray(50)]).toEqual([...bytesOf(40, 1)]); // the part still in use is untouched
    expect(writer.write(bytesOf(11, 3))).toBeNull(); // 40..50 is all that is left
    a.release();
    b.releaseTo(40); // b done: its gap and bytes come back with it
    expect(writer.drained).toBe(true);
    expect(reader.drained).toBe(true);
  });

  it('a writer that may wait for room gets the room the reader gives back meanwhile, from another thread', async () => {
    const share = createRing(100);
    const writer = new RingWriter(share);
    const first = writer.write(bytesOf(60, 1))!;
    // The reader's side in a thread of its own: the 60 bytes given back after a while, as release() does.
    const releaser = new Worker(
      `const { workerData } = require('node:worker_threads');
       const released = new Int32Array(workerData);
       setTimeout(() => { Atomics.add(released, 0, 60); Atomics.notify(released, 0); }, 50);`,
      { eval: true, workerData: share.control },
    );
    try {
      const second = writer.write(bytesOf(60, 2), 5000); // 120 bytes would not fit: this thread waits
      expect(second).not.toBeNull();
      expect(second!.at).toBe(0); // where the first was: given back
      expect(first.length).toBe(60);
    } finally {
      await releaser.terminate();
    }
  });

  it('a writer that may wait hands the bytes the other way once its wait is over, when nothing comes back', () => {
    const share = createRing(100);
    const writer = new RingWriter(share);
    writer.write(bytesOf(60, 1));
    expect(writer.write(bytesOf(60, 2), 30)).toBeNull();
    expect(writer.write(bytesOf(200, 3), 5000)).toBeNull(); // larger than the ring: not waited for
  });

  it('a release wakes a writer waiting for room', async () => {
    const share = createRing(100);
    const writer = new RingWriter(share);
    const reader = new RingReader(share);
    const { release } = reader.read(writer.write(bytesOf(60, 1))!);
    const released = new Int32Array(share.control);
    // Atomics.waitAsync (Node 16+) is ES2024, past this project's TypeScript lib.
    const { waitAsync } = Atomics as unknown as {
      waitAsync: (a: Int32Array, i: number, v: number, ms: number) => { value: Promise<string> | string };
    };
    const waiting = waitAsync(released, 0, Atomics.load(released, 0), 5000);
    release();
    expect(await waiting.value).toBe('ok');
  });
});
