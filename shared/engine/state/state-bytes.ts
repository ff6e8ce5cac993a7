// A bucket's new state lines as bytes, built on the engine thread (see StateEntries.writeKept).
const NEWLINE = 0x0a;

/**
 * A bucket's new state lines as UTF-8, each ending in a newline: what the bucket step keeps, built
 * on the engine thread and handed to the main thread through the objects ring (or transferred),
 * to be written before the lines of what Braze took (SyncStateStore.writeBucket).
 */
export class StateBytes {
  private bytes: Buffer;
  private used = 0;

  /** `expected`: about how many bytes the lines will take (the bucket's state before). */
  constructor(expected = 0) {
    this.bytes = Buffer.allocUnsafeSlow(Math.max(64 * 1024, expected + (expected >> 3)));
  }

  /** Lines [from, to) of `source` (without the last one's newline). */
  addLines(source: Uint8Array, from: number, to: number): void {
    this.room(to - from + 1);
    this.bytes.set(source.subarray(from, to), this.used);
    this.used += to - from;
    this.bytes[this.used++] = NEWLINE;
  }

  /** Lines of text (without the last one's newline). */
  addText(text: string): void {
    if (text === '') {
      this.room(1);
      this.bytes[this.used++] = NEWLINE;
      return;
    }
    // A UTF-16 code unit takes at most 3 bytes; long texts (lines kept whole) are measured instead.
    this.room((text.length < 4096 ? 3 * text.length : Buffer.byteLength(text)) + 1);
    this.used += this.bytes.write(text, this.used);
    this.bytes[this.used++] = NEWLINE;
  }

  /** Starts a line of at most `bytes` bytes (its newline not counted), written by the calls below up to end(). */
  open(bytes: number): void {
    this.room(bytes + 1);
  }

  /** Text of one-byte characters (ASCII), as bytes. */
  ascii(text: string): void {
    for (let i = 0; i < text.length; i++) this.bytes[this.used++] = text.charCodeAt(i);
  }

  /** Bytes [from, to) of `source`. */
  copy(source: Uint8Array, from: number, to: number): void {
    for (let i = from; i < to; i++) this.bytes[this.used++] = source[i]!;
  }

  byte(c: number): void {
    this.bytes[this.used++] = c;
  }

  /** Ends the line opened. */
  end(): void {
    this.bytes[this.used++] = NEWLINE;
  }

  /**
   * The lines, in memory of their own (not a pool's), so they can be transferred to another thread;
   * the builder starts afresh in new memory as large, not grown from 64 KB again (a block of each
   * size up to a bucket's lines, allocated and dropped, which the thread's allocator keeps in pieces).
   */
  take(): Uint8Array {
    const lines = new Uint8Array(this.bytes.buffer, 0, this.used);
    this.bytes = Buffer.allocUnsafeSlow(this.bytes.length);
    this.used = 0;
    return lines;
  }

  /** The lines so far, as a view (valid until the next add or clear). */
  written(): Uint8Array {
    return this.bytes.subarray(0, this.used);
  }

  /** Starts afresh in the same memory (the lines were copied elsewhere). */
  clear(): void {
    this.used = 0;
  }

  private room(more: number): void {
    if (this.used + more <= this.bytes.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(2 * this.bytes.length, this.used + more));
    this.bytes.copy(grown, 0, 0, this.used);
    this.bytes = grown;
  }
}
