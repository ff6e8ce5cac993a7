// The engine's worker threads: when nothing is sent early (a change run, a resumed attempt), the
// snapshot is more than one bucket and the process may use more than one core
// (os.availableParallelism counts those), a helper beside the reading thread, each reading its share
// of every segment's partitions. The helper then ends and the reading thread prepares the buckets
// alone: two threads preparing buckets held two buckets at once and took a 10 M change run over
// 300 MB, for no time measurably saved. A run that sends early has one thread: it is paced by Braze,
// or by a machine whose cores are busy sending as well (a second thread reading the other segments'
// keys saved nothing there).
// Who downloads: one reading thread downloads what it reads itself (read/partition-download.ts),
// since the main thread's download and its garbage collection took the thread's core (one core) or
// time from sending (sending early); with two reading threads the main thread downloads for both,
// beside their parsing: on two cores a 10 M change run read in 8.2 s so, in 11.8 s with each
// thread downloading its own share.
import { ROW_SPILLS } from '../spill/bucket-files';
import { MAX_REPORT_ROWS } from '../read/partition-books';
import type { SegmentTable } from '../../snapshot/locate';
import { EngineThread, type PartitionRun } from './engine-thread-client';
import type { ReceivedBucket } from './buckets-asked';
import { threadLimits } from './thread-sizing';
import type { PartitionInit, PartitionSummary } from '../thread/protocol';

export class EngineThreads {
  /** Reads (and sends early, if it does), then prepares buckets. */
  readonly reader: EngineThread;
  private helper: EngineThread | null;

  /**
   * `helper`: whether a second thread is worth its start (more than one bucket, nothing sent early).
   * `hadState`: the export has sync state, which the reading thread's buckets are diffed against.
   */
  constructor(init: Omit<PartitionInit, 'spillKind'>, bucketCsvBytes: number, helper: boolean, hadState: boolean) {
    this.reader = new EngineThread({ ...init, spillKind: ROW_SPILLS[0] }, threadLimits(bucketCsvBytes, hadState));
    this.helper = helper ? new EngineThread({ ...init, spillKind: ROW_SPILLS[1] }, threadLimits(bucketCsvBytes, false)) : null;
  }

  /** Reads the snapshot's tables (see EngineThread.partition), on both threads if there are two. */
  async partition(run: PartitionRun): Promise<PartitionSummary> {
    if (!this.helper) return this.reader.partition({ ...run, threadDownloads: true });
    const shares = splitTables(run.tables);
    // Each thread counts its own rows: the run's progress is their sum.
    const counts = [
      { rows: 0, segmentRows: {} as Record<string, number> },
      { rows: 0, segmentRows: {} as Record<string, number> },
    ];
    const share = (i: 0 | 1): PartitionRun => ({
      ...run,
      tables: shares[i],
      onProgress: (rows, segmentRows) => {
        counts[i] = { rows, segmentRows };
        run.onProgress(counts[0]!.rows + counts[1]!.rows, sumCounts(counts[0]!.segmentRows, counts[1]!.segmentRows));
      },
    });
    const [a, b] = await Promise.all([this.reader.partition(share(0)), this.helper.partition(share(1))]);
    await this.endHelper();
    return mergeSummaries(a, b);
  }

  private async endHelper(): Promise<void> {
    const helper = this.helper;
    this.helper = null;
    await helper?.close();
  }

  /** Merges and diffs a bucket (on the reading thread: see above). */
  prepare(bucket: number, stateFile: string | null): Promise<ReceivedBucket> {
    return this.reader.prepare(bucket, stateFile);
  }

  async close(): Promise<void> {
    await Promise.all([this.reader.close(), this.helper?.close()]);
  }
}

/**
 * Each table's partitions split in two, in order: a first part for the reading thread, the rest for
 * the helper, at the points that keep the two threads' bytes closest over all tables (a table's
 * split chosen alone left a 1 M, three-segment snapshot at 750 K rows against 963 K: the reading
 * thread then waited ~0.1 s for the helper). Each thread spills to its own files and the bucket step
 * reads the reading thread's first, so a segment's rows keep their order (which row of a segment
 * wins a merge depends on it).
 */
export function splitTables(tables: SegmentTable[]): [SegmentTable[], SegmentTable[]] {
  const heads = balancedHeads(tables.map((t) => t.partitions.map((p) => p.sizeBytes)));
  const first: SegmentTable[] = [];
  const rest: SegmentTable[] = [];
  tables.forEach((table, i) => {
    const k = heads[i]!;
    if (k > 0) first.push({ ...table, partitions: table.partitions.slice(0, k) });
    if (k < table.partitions.length) rest.push({ ...table, partitions: table.partitions.slice(k) });
  });
  return [first, rest];
}

/** Bytes sums told apart when balancing: sums within 1/4096 of the snapshot of each other count as one. */
const BALANCE_STEPS = 4096;

/**
 * How many partitions of each table (by their sizes) go first: the first parts' bytes as close to
 * half of all as the tables' prefixes allow (a tie goes to the reading thread). Every sum the
 * prefixes reach is kept, to a grid of 1/4096 of the bytes, so the search stays small whatever the
 * partition count.
 */
function balancedHeads(sizes: number[][]): number[] {
  const total = sizes.flat().reduce((a, b) => a + b, 0);
  const grid = Math.max(1, total / BALANCE_STEPS);
  let reached = new Map<number, { bytes: number; heads: number[] }>([[0, { bytes: 0, heads: [] }]]);
  for (const table of sizes) {
    const next = new Map<number, { bytes: number; heads: number[] }>();
    for (const { bytes, heads } of reached.values()) {
      for (let k = 0, prefix = 0; k <= table.length; prefix += table[k] ?? 0, k++) {
        const cell = Math.round((bytes + prefix) / grid);
        if (!next.has(cell)) next.set(cell, { bytes: bytes + prefix, heads: [...heads, k] });
      }
    }
    reached = next;
  }
  let best = { bytes: 0, heads: sizes.map(() => 0) };
  for (const option of reached.values()) {
    const gap = Math.abs(total - 2 * option.bytes);
    const bestGap = Math.abs(total - 2 * best.bytes);
    if (gap < bestGap || (gap === bestGap && option.bytes > best.bytes)) best = option;
  }
  return best.heads;
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
  };
}
