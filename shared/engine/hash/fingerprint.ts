// The fingerprint kept in the sync state for each profile: 64 bits over the UTF-8 bytes of the
// attributes object Braze was sent. It only has to tell "changed" from "unchanged" for the same
// profile, not resist an attacker. Taken over bytes, not text, because the engine writes every
// object as bytes anyway (to be sent), and a byte loop here is several times cheaper than hashing
// a freshly built string natively (which first flattens and re-encodes it).
// Both lanes are bijective per byte (xor, multiply by an odd constant, xorshift), so two objects
// that differ in a single place always get different fingerprints.

const ALPHABET = Uint8Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', (c) => c.charCodeAt(0));

export function fingerprintBytes(bytes: Uint8Array, start: number, end: number): string {
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

/** Two 32-bit lanes as 11 characters of 6 bits: 32 from a, 32 from b (the last character carries 4 bits). */
export function encode64(a: number, b: number): string {
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
    d[(b >>> 28) & 63]!,
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
