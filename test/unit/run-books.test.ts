// The run's books: what a run's record says, and when it is written.
import { describe, expect, it } from 'vitest';
import { BrazeClient } from '../../shared/braze/client';
import { RequestBudget } from '../../shared/braze/request-budget';
import { RunBooks, type RunProgress } from '../../shared/engine/run/progress';
import { emptyBucketCounts, type PreparedBucket } from '../../shared/engine/thread/protocol';
import { exportDefinition } from '../helpers/definition';

const braze = new BrazeClient({
  baseUrl: 'http://127.0.0.1:9',
  apiKey: 'k',
  budget: new RequestBudget({ requestsPerWindow: 10 }),
});

const bucket = (n: number, sent: number) =>
  ({ bucket: n, counts: { ...emptyBucketCounts(), profiles: sent, sent }, omitted: {} }) as unknown as PreparedBucket;

describe('run books', () => {
  it('write the record once for the buckets checkpointed while a write was under way, and each report waits for a write that holds it', async () => {
    const written: { done: number[]; sent: number }[] = [];
    const writes: (() => void)[] = [];
    const books = new RunBooks(
      exportDefinition({ segments: ['A'], matching: { email: 'Email', brazeCustomerId: 'Ext' } }),
      8,
      braze,
      undefined,
      (p: RunProgress) => {
        written.push({ done: [...p.buckets.done], sent: p.counts.sent });
        return new Promise<void>((resolve) => writes.push(resolve));
      },
    );
    books.commitBucket(bucket(0, 10));
    const first = books.report(true);
    await new Promise((r) => setImmediate(r)); // the first write is under way
    const later = [1, 2, 3].map((n) => {
      books.commitBucket(bucket(n, 10));
      return books.report(true);
    });
    expect(written).toEqual([{ done: [0], sent: 10 }]);
    writes.shift()!();
    await first;
    await new Promise((r) => setImmediate(r));
    // One more write, with every bucket committed meanwhile; none of those reports is done before it.
    expect(written).toEqual([
      { done: [0], sent: 10 },
      { done: [0, 1, 2, 3], sent: 40 },
    ]);
    let settled = false;
    void Promise.all(later).then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    writes.shift()!();
    await Promise.all(later);
    expect(writes).toHaveLength(0);
  });

  it('report what they held when the report was made: a bucket committed later is in neither its buckets done nor its counts', async () => {
    const reported: RunProgress[] = [];
    const books = new RunBooks(
      exportDefinition({ segments: ['A'], matching: { email: 'Email', brazeCustomerId: 'Ext' } }),
      4,
      braze,
      undefined,
      (p: RunProgress) => void reported.push(p),
    );
    books.commitBucket(bucket(0, 10));
    await books.report(true);
    // The worker's heartbeat writes a shallow copy of the last record some time later.
    const heartbeat = { ...reported[0]! };
    books.commitBucket(bucket(1, 7));
    expect(heartbeat.buckets.done).toEqual([0]);
    expect(heartbeat.bucketCounts.profiles).toBe(10);
    expect(heartbeat.counts.profiles).toBe(10);
    await books.report(true);
    expect(reported[1]!.buckets.done).toEqual([0, 1]);
    expect(reported[1]!.bucketCounts.profiles).toBe(17);
  });

  it("carry the reasons for failed objects an earlier attempt recorded, then this attempt's, five at most", async () => {
    const client = new BrazeClient({
      baseUrl: 'http://127.0.0.1:9',
      apiKey: 'k',
      budget: new RequestBudget({ requestsPerWindow: 10 }),
    });
    for (const reason of ['timed out', 'HTTP 503', 'ECONNRESET', 'HTTP 502']) client.failureReasons.add(reason);
    const written: string[][] = [];
    const books = new RunBooks(
      exportDefinition({ segments: ['A'], matching: { email: 'Email', brazeCustomerId: 'Ext' } }),
      1,
      client,
      {
        buckets: { total: 1, done: [] },
        bucketCounts: emptyBucketCounts(),
        requests: { sent: 0, retried: 0, rateLimited: 0 },
        omittedAttributes: {},
        failureReasons: ['HTTP 503', 'DEPTH_ZERO_SELF_SIGNED_CERT'],
      },
      (p: RunProgress) => void written.push([...p.failureReasons]),
    );
    await books.report(true);
    expect(written).toEqual([['HTTP 503', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'timed out', 'ECONNRESET', 'HTTP 502']]);
  });
});
