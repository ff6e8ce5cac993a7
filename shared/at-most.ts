// Work over many items with a bound on how much is under way at once: requests to storage (a
// snapshot's partitions, blobs to delete) go together, but not thousands at a time.

/**
 * `work` over every item, at most `limit` under way at once; the results in the items' order. The
 * first failure rejects, and items not started by then are not started.
 */
export async function mapAtMost<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await work(items[i]!);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
