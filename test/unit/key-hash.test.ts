// The key hash decides which sync-state bucket a profile lives in: an export's state written by one
// release must be found by the next, so the hash is pinned to FNV-1a's published test vectors.
import { describe, expect, it } from 'vitest';
import { bucketOf, fnv1a32 } from '../../shared/engine/hash/key-hash';

describe('profile key hash', () => {
  it('is FNV-1a 32-bit', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('spreads keys over buckets by that hash', () => {
    expect(bucketOf('foobar', 1024)).toBe(0xbf9cf968 % 1024);
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[bucketOf(`c${i}`, 16)]!++;
    for (const n of counts) expect(n).toBeGreaterThan(800);
  });
});
