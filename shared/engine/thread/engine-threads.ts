// The engine's worker threads, two (one per core of the machine the app is sized for) for a
// snapshot of more than one bucket. When nothing is sent while reading (a change run, a resumed
// attempt), both read, each its share of every segment's partitions, then both prepare buckets.
// When sending while reading, both read the other segments for their keys (no request can go out
// before that), then the second thread hands what it found to the reading thread and ends: the rest
// is paced by Braze, not by the thread, and a second thread would only cost its memory.
import type { PreparedBucket } from '../diff/bucket-step';
import { ROW_SPILLS } from '../spill/bucket-files';
import { MAX_REPORT_ROWS } from '../read/partition-step';
import type { SegmentTable } from '../../snapshot/locate';
import { EngineThread, youngGenerationMb, type PartitionRun, type ReceivedBucket } from './engine-thread-client';
import type { PartitionInit, PartitionSummary } from './protocol';

export type { ReceivedBucket, PreparedBucket };

export class EngineThreads {
  /** Reads (and sends while reading, if it does), then prepares buckets. */
  readonly reader: EngineThread;
  private helper: EngineThread | null;

  /** `helper`: whether a second thread is worth its start (more than one bucket; for a key pass, other segments to read). */
  constructor(
    private readonly init: Omit<PartitionInit, 'spillKind'>,
    bucketCsvBytes: number,
    helper: boolean,
  ) {
    // The reading thread keeps the larger young generation when it sends while reading.
    this.reader = new EngineThread({ ...init, spillKind: ROW_SPILLS[0] }, bucketCsvBytes, youngGenerationMb(helper && !init.early ? 2 : 1));
    this.helper = helper ? new EngineThread({ ...init, spillKind: ROW_SPILLS[1] }, bucketCsvBytes, youngGenerationMb(2)) : null;
  }

  /** How many threads prepare buckets. */
  get count(): number {
    return this.helper ? 2 : 1;
  }

  /** Reads the snapshot's tables (see EngineThread.partition), on both threads if there are two. */
  async partition(run: PartitionRun): Promise<PartitionSummary> {
    if (!this.helper) return this.reader.partition(run);
    if (run.early) return this.keysOnBothThenRead(run, this.helper);
    const shares = splitTables(run.tables);
    // Each thread counts its own rows: the run's progress is their sum.
    const counts = [{ rows: 0, segmentRows: {} as Record<string, number> }, { rows: 0, segmentRows: {} as Record<string, number> }];
    const share = (i: 0 | 1): PartitionRun => ({
      ...run,
      tables: shares[i],
      onProgress: (rows, segmentRows) => {
        counts[i] = { rows, segmentRows };
        run.onProgress(counts[0]!.rows + counts[1]!.rows, sumCounts(counts[0]!.segmentRows, counts[1]!.segmentRows));
      },
    });
    const [a, b] = await Promise.all([this.reader.partition(share(0)), this.helper.partition(share(1))]);
    return mergeSummaries(a, b);
  }

  /**
   * Sending while reading: the other segments are read for their profile keys on both threads, each
   * its share; the helper hands its keys and its waiting rows to the reading thread and ends, and
   * the reading thread reads on (see EngineThread.partition).
   */
  private async keysOnBothThenRead(run: PartitionRun, helper: EngineThread): Promise<PartitionSummary> {
    const sentWhileReading = run.tables.filter((t) => t.segment === this.init.early!.segment);
    const others = run.tables.filter((t) => t.segment !== this.init.early!.segment);
    const [mine, theirs] = splitTables(others);
    await Promise.all([this.reader.readTables({ ...run, tables: mine }), helper.readTables({ ...run, tables: theirs })]);
    this.reader.takeKeys(await helper.handOverKeys(), others.flatMap((t) => t.partitions.map((p) => p.blobName)));
    this.helper = null;
    await helper.close();
    return this.reader.partition({ ...run, tables: sentWhileReading });
  }

  /** Prepares a bucket on the thread with fewer buckets to prepare. */
  prepare(bucket: number, stateText: string | null, earlyOmitted: Record<string, number>): Promise<ReceivedBucket> {
    const thread = this.helper && this.helper.preparing < this.reader.preparing ? this.helper : this.reader;
    return thread.prepare(bucket, stateText, earlyOmitted);
  }

  async close(): Promise<void> {
    await Promise.all([this.reader.close(), this.helper?.close()]);
  }
}

/**
 * Each table's partitions split in two, in order: a first part for the reading thread, the rest for
 * the helper, at the point that keeps the two threads' bytes closest. Each thread spills to its own
 * files and the bucket step reads the reading thread's first, so a segment's rows keep their order
 * (which row of a segment wins a merge depends on it).
 */
export function splitTables(tables: SegmentTable[]): [SegmentTable[], SegmentTable[]] {
  const first: SegmentTable[] = [];
  const rest: SegmentTable[] = [];
  let firstBytes = 0;
  let restBytes = 0;
  for (const table of tables) {
    const sizes = table.partitions.map((p) => p.sizeBytes);
    const total = sizes.reduce((a, b) => a + b, 0);
    let best = 0;
    let bestGap = Infinity;
    for (let k = 0, prefix = 0; k <= sizes.length; prefix += sizes[k] ?? 0, k++) {
      const gap = Math.abs(firstBytes + prefix - (restBytes + total - prefix));
      if (gap <= bestGap) [best, bestGap] = [k, gap]; // a tie goes to the reading thread
    }
    const head = sizes.slice(0, best).reduce((a, b) => a + b, 0);
    firstBytes += head;
    restBytes += total - head;
    if (best > 0) first.push({ ...table, partitions: table.partitions.slice(0, best) });
    if (best < sizes.length) rest.push({ ...table, partitions: table.partitions.slice(best) });
  }
  return [first, rest];
}

function sumCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const sum = { ...a };
  for (const [k, v] of Object.entries(b)) sum[k] = (sum[k] ?? 0) + v;
  return sum;
}

/** Both threads' summaries as one (the reading thread's rejected rows first). */
function mergeSummaries(a: PartitionSummary, b: PartitionSummary): PartitionSummary {
  return {
    rowsRead: a.rowsRead + b.rowsRead,
    rowsRejected: a.rowsRejected + b.rowsRejected,
    segmentRows: sumCounts(a.segmentRows, b.segmentRows),
    rejectedRows: [...a.rejectedRows, ...b.rejectedRows].slice(0, MAX_REPORT_ROWS),
    foundFields: [...new Set([...a.foundFields, ...b.foundFields])],
    missingFields: [...new Map([...a.missingFields, ...b.missingFields])],
    earlyOmitted: [...a.earlyOmitted, ...b.earlyOmitted],
  };
}
