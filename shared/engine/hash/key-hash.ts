// The one hash of profile keys the engine uses: it spreads profiles over sync-state buckets (and
// so must never change for an export with state), and it is the first base hash of the key filters.
import { mix } from './fingerprint';

/** FNV-1a's starting state and multiplier: the loops that hash keys in place (bytes of plain ASCII keys) use them too. */
export const FNV_OFFSET = 0x811c9dc5;
export const FNV_PRIME = 0x01000193;

/** FNV-1a (32 bits) over the key's UTF-16 code units: fast and stable. */
export function fnv1a32(key: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), FNV_PRIME);
  return h >>> 0;
}

/** The sync-state bucket of a profile key's hash (fnv1a32). */
export const bucketOfHash = (keyHash: number, bucketCount: number): number => keyHash % bucketCount;

/** The sync-state bucket of a profile key. */
export const bucketOf = (key: string, bucketCount: number): number => bucketOfHash(fnv1a32(key), bucketCount);

/**
 * Open-addressing tables of one bucket's keys (spill/spilled-profiles.ts, state/state-entries.ts):
 * entry + 1 per slot, 0 = empty, at least twice as many slots as entries. A key's first slot comes
 * from all the bits of its hash: the low ones chose the bucket, so every key in it shares them.
 */
export function keySlotCount(entries: number): number {
  let size = 16;
  while (size < entries * 2) size *= 2;
  return size;
}

export const firstSlot = (slots: Int32Array, hash: number): number => mix(hash) & (slots.length - 1);

/** The first entry with this hash (`hashes` per entry) that `isIt` accepts, probing from its first slot; -1 when none. */
export function findEntry(slots: Int32Array, hashes: Int32Array, hash: number, isIt: (entry: number) => boolean): number {
  const mask = slots.length - 1;
  for (let slot = firstSlot(slots, hash); slots[slot] !== 0; slot = (slot + 1) & mask) {
    const entry = slots[slot]! - 1;
    if (hashes[entry] === hash && isIt(entry)) return entry;
  }
  return -1;
}
