// The one hash of profile keys the engine uses: it spreads profiles over sync-state buckets (and
// so must never change for an export with state), and it is the first base hash of the key filters.

/** FNV-1a (32 bits) over the key's UTF-16 code units: fast and stable. */
export function fnv1a32(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The sync-state bucket of a profile key. */
export const bucketOf = (key: string, bucketCount: number): number => fnv1a32(key) % bucketCount;
