// The fingerprint kept in the sync state for each profile: 64 bits over the UTF-8 bytes of the
// attributes object Braze was sent. It only has to tell "changed" from "unchanged" for the same
// profile, not resist an attacker. Taken over bytes, not text, because the engine writes every
// object as bytes anyway (to be sent), and a byte loop here is several times cheaper than hashing
// a freshly built string natively (which first flattens and re-encodes it).
// Four bytes a step (a little-endian word), as the rows digest hashes a line: every object a run
// writes is fingerprinted, ~350 bytes a wide profile. Fingerprints taken a byte a step, as releases
// before this one wrote them, are still in customers' sync states: their last character tells them
// apart (see sameFingerprint), so no profile is sent again only because its line is older.

const ALPHABET = Uint8Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', (c) => c.charCodeAt(0));
/**
 * encode64's last character carries 4 bits (A–P): a fingerprint taken four bytes a step has it
 * moved up by 16 (Q–f), so either kind tells which it is.
 */
const WORDWISE_MARK = 16;

/** The bytes the DataView is over: one per buffer of objects (they are used again), not one per object. */
let viewed: Uint8Array | null = null;
let view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

/**
 * Hashes bytes [start, end) into two lanes (`words`: a DataView over `bytes`), four bytes a step:
 * the fingerprint's and the rows digest's loop (rows-digest.ts).
 */
export function hashWords(
  bytes: Uint8Array,
  words: DataView<ArrayBufferLike>,
  start: number,
  end: number,
  lanes: { a: number; b: number },
): void {
  // Each step is a bijection of the lane for a given input and injective in the input, so two
  // inputs that differ in one place always hash differently; the second lane sums the first's
  // states, the length tells "ab" from "ab\0".
  let x = 0x811c9dc5 | 0;
  let y = 0x2545f491 | 0;
  let i = start;
  for (; i + 3 < end; i += 4) {
    x = Math.imul(x ^ words.getInt32(i, true), 0x5bd1e995);
    x ^= x >>> 15;
    y = (y + x) | 0;
  }
  for (; i < end; i++) {
    x = Math.imul(x ^ (bytes[i]! | 0x100), 0x5bd1e995);
    x ^= x >>> 15;
    y = (y + x) | 0;
  }
  lanes.a = mix(x ^ (end - start));
  lanes.b = mix(y);
}

const lanes = { a: 0, b: 0 };

/** The fingerprint of the object in bytes [start, end). */
export function fingerprintBytes(bytes: Uint8Array, start: number, end: number): string {
  if (bytes !== viewed) {
    viewed = bytes;
    view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  hashWords(bytes, view, start, end, lanes);
  return encode64(lanes.a, lanes.b, WORDWISE_MARK);
}

/**
 * Whether `fp` (a sync state's) is the fingerprint of the object in bytes [start, end), whose
 * fingerprint now is `current`: the same, or one a release before this one took of those bytes.
 */
export function sameFingerprint(fp: string, current: string, bytes: Uint8Array, start: number, end: number): boolean {
  return fp === current || (isBytewise(fp) && fp === bytewiseFingerprint(bytes, start, end));
}

/** The fingerprint of the object in bytes [start, end), taken as `like` (a sync state's) was: to compare with it. */
export function fingerprintLike(like: string, bytes: Uint8Array, start: number, end: number): string {
  return isBytewise(like) ? bytewiseFingerprint(bytes, start, end) : fingerprintBytes(bytes, start, end);
}

/** Whether `fp` was taken a byte a step (by a release before this one): its last character in A–P. */
const isBytewise = (fp: string) => fp.length === ENCODED_64_CHARS && fp.charCodeAt(ENCODED_64_CHARS - 1) <= 0x50;

/** The fingerprint as releases before this one took it, a byte a step (still in customers' sync states). */
export function bytewiseFingerprint(bytes: Uint8Array, start: number, end: number): string {
  let a = 0x811c9dc5 | 0;
  let b = 0x2545f491 | 0;
  for (let i = start; i < end; i++) {
    const c = bytes[i]!;
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return encode64(mix(a ^ (end - start)), mix(b));
}

/**
 * Two 32-bit lanes as 11 characters of 6 bits: 32 from a, 32 from b (the last character carries 4
 * bits, plus `mark`: 0 or WORDWISE_MARK).
 */
export function encode64(a: number, b: number, mark = 0): string {
  const d = ALPHABET;
  return String.fromCharCode(
    d[a & 63]!,
    d[(a >>> 6) & 63]!,
    d[(a >>> 12) & 63]!,
    d[(a >>> 18) & 63]!,
    d[(a >>> 24) & 63]!,
    d[((a >>> 30) | (b << 2)) & 63]!,
    d[(b >>> 4) & 63]!,
    d[(b >>> 10) & 63]!,
    d[(b >>> 16) & 63]!,
    d[(b >>> 22) & 63]!,
    d[((b >>> 28) & 15) + mark]!,
  );
}

/** The characters encode64 writes. */
export const ENCODED_64_CHARS = 11;

/** Whether bytes [at, at + 11) of `bytes` are encode64(a, b), compared without making the string. */
export function encoded64At(a: number, b: number, bytes: Uint8Array, at: number): boolean {
  const d = ALPHABET;
  for (let i = 0; i < 5; i++) if (bytes[at + i] !== d[(a >>> (6 * i)) & 63]) return false;
  if (bytes[at + 5] !== d[((a >>> 30) | (b << 2)) & 63]) return false;
  for (let i = 0; i < 5; i++) if (bytes[at + 6 + i] !== d[(b >>> (4 + 6 * i)) & 63]) return false;
  return true;
}

/** murmur3's finalizer: every input bit affects every output bit. */
export function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}
