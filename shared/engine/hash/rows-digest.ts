// A profile's rows, as the partition step spilled them, in 64 bits: kept in the sync state beside
// the object's fingerprint, so a change run can tell a profile whose rows did not change without
// mapping, merging and writing its object again (the same rows make the same object, as long as
// the export's settings and the columns' types are the same, and no value was left out as invalid).
// Order-independent (each line hashed over its UTF-8 bytes, the hashes added), as a profile's rows
// may come in another order next time. The sums start from a seed that the column types make (see
// spilledRowTyping): spill lines are rows as read, not yet typed. Equal digests are trusted only where the object would be
// equal too; any other case takes the full path, which is always right.
import { encode64, encoded64At, ENCODED_64_CHARS, hashWords, mix } from './fingerprint';

/** The sums a profile's line hashes are added into (see addLine), per lane. */
export interface DigestSums {
  a: number;
  b: number;
}

const line = { a: 0, b: 0 };

/**
 * Hashes the line of bytes [start, end) (`view`: a DataView over `bytes`) and adds it to `sums`,
 * four bytes a step (hashWords): every line of a change run is hashed, and this is the bucket
 * step's hottest loop.
 */
export function addLine(sums: DigestSums, bytes: Uint8Array, view: DataView, start: number, end: number): void {
  hashWords(bytes, view, start, end, line);
  sums.a = (sums.a + line.a) | 0;
  sums.b = (sums.b + line.b) | 0;
}

/** The digest of the lines whose hashes were added up into these sums. */
export const digestOf = (a: number, b: number): string => encode64(mix(a), mix(b));

/** The characters of a digest. */
export const DIGEST_CHARS = ENCODED_64_CHARS;

/** Whether bytes [at, at + DIGEST_CHARS) of `bytes` are digestOf(a, b) (no string made). */
export const digestAt = (a: number, b: number, bytes: Uint8Array, at: number): boolean => encoded64At(mix(a), mix(b), bytes, at);

/** Where lineDigest encodes a line: reused, as it runs for every row sent early. */
let scratch = Buffer.allocUnsafe(4096);
let scratchView = new DataView(scratch.buffer, scratch.byteOffset, scratch.length);

/** A single spill line's digest (a row sent early, never spilled), over its UTF-8 bytes. */
export function lineDigest(line: string, seed: number): string {
  // A UTF-16 code unit takes at most 3 bytes in UTF-8.
  if (line.length * 3 > scratch.length) {
    scratch = Buffer.allocUnsafe(line.length * 3);
    scratchView = new DataView(scratch.buffer, scratch.byteOffset, scratch.length);
  }
  return bytesDigest(scratch, scratchView, 0, scratch.write(line), seed);
}

/** The digest of a single spill line given as bytes [start, end) (`view`: a DataView over `bytes`). */
export function bytesDigest(bytes: Uint8Array, view: DataView, start: number, end: number, seed: number): string {
  const sums = { a: seed, b: 0 };
  addLine(sums, bytes, view, start, end);
  return digestOf(sums.a, sums.b);
}
