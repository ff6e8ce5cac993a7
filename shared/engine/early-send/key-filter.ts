// A Bloom filter of profile keys: "surely not seen" or "maybe seen", in a fixed, small amount of
// memory whatever the snapshot's size. The engine only needs the first answer to be certain: a
// profile it is not sure about takes the slower, always-correct path.
// Blocked: a key's bits all sit in one 64-byte block (one cache line), so a lookup costs one
// memory access, not one per bit. Reading a first run asks the filters for every row, and five
// scattered accesses into megabytes of bits were most of what that cost.
// It takes the key's fnv1a32 (key-hash.ts), which reading has at hand for the row's bucket, so no
// string of the key is needed. Two keys with the same 32 bits share their "maybe": ~0.04 % more
// false "maybe" at a million keys, next to the filter's ~1 %.
import { mix } from '../hash/fingerprint';

const HASHES = 5;
/** 16 × 32 bits = 512 bits = one cache line. */
const BLOCK_WORDS = 16;

export class KeyFilter {
  private readonly bits: Uint32Array;
  private readonly blocks: number;

  /** About 10 bits per expected key (≈ 1 % false "maybe" when the estimate holds), within 64 KB–32 MB. */
  constructor(expectedKeys: number) {
    this.blocks = Math.min(2 ** 19, Math.max(2 ** 10, Math.ceil((expectedKeys * 10) / 512)));
    this.bits = new Uint32Array(this.blocks * BLOCK_WORDS);
  }

  /** The filter's memory. */
  get bytes(): number {
    return this.bits.byteLength;
  }

  /** Notes a key by its fnv1a32. */
  add(keyHash: number): void {
    const bits = this.bits;
    const base = this.blockOf(keyHash);
    let h = mix(keyHash ^ 0x5bd1e995);
    const step = (h >>> 9) | 1;
    for (let i = 0; i < HASHES; i++, h = (h + step) | 0) bits[base + ((h >>> 5) & 15)]! |= 1 << (h & 31);
  }

  /** Whether a key with this fnv1a32 may have been added (false: surely not). */
  mightHave(keyHash: number): boolean {
    const bits = this.bits;
    const base = this.blockOf(keyHash);
    let h = mix(keyHash ^ 0x5bd1e995);
    const step = (h >>> 9) | 1;
    for (let i = 0; i < HASHES; i++, h = (h + step) | 0) {
      if ((bits[base + ((h >>> 5) & 15)]! & (1 << (h & 31))) === 0) return false;
    }
    return true;
  }

  /**
   * The first word of the key's block: from all the hash's bits (the low ones chose the bucket,
   * shared by its keys), scaled to the block count by a multiplication rather than a remainder
   * (exact: the product stays below 2^53). A million keys noted in two filters took ~44 ms with
   * `%`, ~30 ms so.
   */
  private blockOf(keyHash: number): number {
    return Math.floor(((mix(keyHash) >>> 0) * this.blocks) / 2 ** 32) * BLOCK_WORDS;
  }
}
