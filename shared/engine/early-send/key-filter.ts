// A Bloom filter of profile keys: "surely not seen" or "maybe seen", in a fixed, small amount of
// memory whatever the snapshot's size. The engine only needs the first answer to be certain: a
// profile it is not sure about takes the slower, always-correct path.
import { fnv1a32 } from '../spill/key-hash';

const HASHES = 5;

/** A key's two base hashes, computed once and used with any filter. */
export interface KeyHash {
  h1: number;
  h2: number;
}

export class KeyFilter {
  private readonly bits: Uint32Array;
  private readonly size: number;

  /** About 10 bits per expected key (≈ 1 % false "maybe" when the estimate holds), within 64 KB–32 MB. */
  constructor(expectedKeys: number) {
    this.size = Math.min(2 ** 28, Math.max(2 ** 19, Math.ceil(expectedKeys * 10 / 32) * 32));
    this.bits = new Uint32Array(this.size / 32);
  }

  add({ h1, h2 }: KeyHash): void {
    for (let i = 0, h = h1; i < HASHES; i++, h = (h + h2) >>> 0) {
      const bit = h % this.size;
      this.bits[bit >>> 5]! |= 1 << (bit & 31);
    }
  }

  mightHave({ h1, h2 }: KeyHash): boolean {
    for (let i = 0, h = h1; i < HASHES; i++, h = (h + h2) >>> 0) {
      const bit = h % this.size;
      if ((this.bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

/** Two independent 32-bit hashes for double hashing: FNV-1a (as for buckets, mixed) and a murmur-style one. */
export function keyHash(key: string): KeyHash {
  let h1 = fnv1a32(key);
  let h2 = 0x9747b28c;
  for (let i = 0; i < key.length; i++) {
    h2 = Math.imul(h2 ^ key.charCodeAt(i), 0x5bd1e995);
    h2 ^= h2 >>> 13;
  }
  h1 = (h1 ^ (h1 >>> 16)) >>> 0;
  h2 = (Math.imul(h2 ^ (h2 >>> 15), 0x85ebca6b) | 1) >>> 0;
  return { h1, h2 };
}
