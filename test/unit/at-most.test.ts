// Bounded work over many items (a snapshot's partitions, blobs to delete).
import { describe, expect, it } from 'vitest';
import { mapAtMost } from '../../shared/at-most';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('mapAtMost', () => {
  it('keeps at most the limit under way, and gives the results in the items order', async () => {
    let underWay = 0;
    let most = 0;
    const results = await mapAtMost([5, 1, 4, 2, 3, 0, 6], 3, async (n) => {
      most = Math.max(most, ++underWay);
      for (let i = 0; i < n; i++) await tick();
      underWay--;
      return n * 10;
    });
    expect(results).toEqual([50, 10, 40, 20, 30, 0, 60]);
    expect(most).toBe(3);
  });

  it('rejects with the first failure and starts nothing after it', async () => {
    const started: number[] = [];
    const outcome = mapAtMost([1, 2, 3, 4, 5, 6], 2, async (n) => {
      started.push(n);
      if (n === 2) throw new Error('item 2 failed'); // while item 1 is still under way
      await tick();
      return n;
    });
    await expect(outcome).rejects.toThrow('item 2 failed');
    expect(started).toEqual([1, 2]);
  });
});
