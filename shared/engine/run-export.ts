// The export engine: one run of one export over one snapshot. The CPU work happens on a worker
// thread (engine-thread.ts); this thread downloads, sends and keeps the books.
//   1. Partition (partition-step.ts): stream every CSV partition, map rows to partial profiles,
//      spill them to temp files by hash bucket of the profile key (memory does not grow with the
//      snapshot). With nothing to diff against, profiles that can only have one row are sent
//      while reading (early-send.ts).
//   2. Per bucket (bucket-step.ts): merge each profile across segments, diff against the sync
//      state; here: send only what changed (plus `null` membership for profiles that left), then
//      record what Braze accepted.
// Counts hold `profiles = sent + unchanged + rejected + failed` at every checkpoint.
import { rmSync } from 'node:fs';
import os from 'node:os';
import type { BlobServiceClient } from '@azure/storage-blob';
import { BrazeFatalError, type BrazeClient } from '../braze/client';
import type { ExportDefinition } from '../exports/schema';
import type { SegmentTable, Snapshot } from '../snapshot/locate';
import { BatchSender } from './send/batch-sender';
import { BucketOutcomes, recordOutcomes } from './send/bucket-outcomes';
import { emptyBucketCounts, type BucketCounts } from './diff/bucket-step';
import { EarlySender } from './early-send/offers';
import { EngineThread, type ReceivedBucket } from './thread/engine-thread-client';
import { objectAt } from './send/object-bytes';
import { checkedMapper, checkMappedColumns, MAX_REPORT_ROWS, PartitionAborted, type ColumnsSeen, type RejectedRow } from './read/partition-step';
import { createRunTempDir } from './spill/run-temp-dir';
import { chooseBucketCount, fingerprint, type SyncStateStore } from './diff/sync-state';

export type { BucketCounts } from './diff/bucket-step';

export interface RunCounts extends BucketCounts {
  rowsRead: number;
}

export type { RejectedRow } from './read/partition-step';

/** What a run has done so far; persisted at each checkpoint and shown by GET /api/runs/{id}. */
export interface RunProgress {
  phase: 'reading' | 'sending' | 'done';
  counts: RunCounts;
  requests: { sent: number; retried: number; rateLimited: number };
  segments: Record<string, { rows: number }>;
  omittedAttributes: Record<string, number>;
  buckets: { total: number; done: number[] };
  bucketCounts: BucketCounts;
  /** Seconds spent reading the snapshot and sending, in this attempt. */
  timings: { readingSeconds: number; sendingSeconds: number };
  warnings: string[];
}

export interface EngineInput {
  definition: ExportDefinition;
  snapshot: Snapshot;
  ciBlobs: BlobServiceClient;
  state: SyncStateStore;
  braze: BrazeClient;
  fullSync: boolean;
  /** Counts of buckets finished by an earlier attempt of this run (resume). */
  resumeFrom?: Pick<RunProgress, 'buckets' | 'bucketCounts' | 'requests' | 'omittedAttributes'>;
  onProgress?: (progress: RunProgress) => Promise<void> | void;
  /** Asked between buckets: true = stop now (time box), the caller re-queues the continuation. */
  shouldYield?: () => boolean;
  /** The run's first attempt: profiles may be sent while reading (a continuation never does). */
  firstAttempt?: boolean;
  /** How long this attempt may take; sending while reading is skipped when it might not fit. */
  timeBudgetMs?: number;
  /** Snapshot bytes per bucket, when the export has no sync state yet. */
  bucketTargetBytes?: number;
  /** Batches in flight at once (the request budget paces them). */
  concurrency?: number;
  tempRoot?: string;
}

export interface EngineResult {
  progress: RunProgress;
  rejectedRows: RejectedRow[];
  rejectedRowsTotal: number;
  /** false when the run stopped early to be continued. */
  complete: boolean;
}

/** The run cannot go on (bad mapping, bad key…): nothing more is sent; the message is for the user. */
export class RunAborted extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunAborted';
  }
}

/** Array custom attributes keep this many values by default in Braze. */
const BRAZE_ARRAY_LIMIT = 25;
const PROGRESS_EVERY_MS = 1000;

/**
 * Settings whose change makes earlier fingerprints meaningless for this export: what is sent, and
 * where (another connection or endpoint may be another Braze workspace that has none of it).
 */
export const definitionFingerprint = (d: ExportDefinition, destination: string) =>
  fingerprint({ m: d.matching, s: d.segments, b: d.membership, id: d.brazeSegmentApiId, c: d.connectionId, to: destination });

const emptyCounts = (): RunCounts => ({ rowsRead: 0, ...emptyBucketCounts() });

export async function runExport(input: EngineInput): Promise<EngineResult> {
  const { definition: def, snapshot } = input;
  const definitionFp = definitionFingerprint(def, input.braze.destination);
  const manifest = await input.state.readManifest();
  const bucketCount = input.resumeFrom?.buckets.total ?? manifest?.bucketCount ?? chooseBucketCount(snapshot.totalBytes, input.bucketTargetBytes);
  // Whether the state was last written under these settings, i.e. whether a diff is worth trying.
  const stateMatches = manifest?.definition === definitionFp;
  if (!manifest || manifest.bucketCount !== bucketCount || !stateMatches) await input.state.writeManifest({ version: 1, bucketCount, definition: definitionFp });

  const progress: RunProgress = {
    phase: 'reading',
    counts: emptyCounts(),
    requests: { sent: 0, retried: 0, rateLimited: 0 },
    segments: Object.fromEntries(def.segments.map((s) => [s, { rows: 0 }])),
    omittedAttributes: { ...(input.resumeFrom?.omittedAttributes ?? {}) },
    buckets: { total: bucketCount, done: [...(input.resumeFrom?.buckets.done ?? [])] },
    bucketCounts: emptyBucketCounts(),
    timings: { readingSeconds: 0, sendingSeconds: 0 },
    warnings: [],
  };
  if (def.membership.format === 'list' && def.segments.length > BRAZE_ARRAY_LIMIT) {
    progress.warnings.push(
      `The export has ${def.segments.length} segments: Braze keeps ${BRAZE_ARRAY_LIMIT} values of an array attribute by default, so longer membership lists are cut; raise the limit in Braze or use membership.format "boolean"`,
    );
  }
  const rejectedRows: RejectedRow[] = [];
  let rejectedRowsTotal = 0;
  const reject = (row: RejectedRow) => {
    rejectedRowsTotal++;
    if (rejectedRows.length < MAX_REPORT_ROWS) rejectedRows.push(row);
  };

  let lastReport = 0;
  // Reports go out one at a time, so a slow write never lands after a newer one.
  let reporting: Promise<void> = Promise.resolve();
  const countRequests = () => {
    const b = input.braze.requests;
    const base = input.resumeFrom?.requests ?? { sent: 0, retried: 0, rateLimited: 0 };
    progress.requests = { sent: base.sent + b.sent, retried: base.retried + b.retried, rateLimited: base.rateLimited + b.rateLimited };
  };
  const report = async (force = false) => {
    countRequests();
    if (!input.onProgress || (!force && Date.now() - lastReport < PROGRESS_EVERY_MS)) return;
    lastReport = Date.now();
    const onProgress = input.onProgress;
    const write = reporting.then(() => {
      countRequests();
      return onProgress(progress);
    });
    reporting = write.catch(() => undefined);
    await write;
  };

  const tempDir = createRunTempDir(input.tempRoot ?? os.tmpdir());
  const started = Date.now();
  const seconds = (from: number) => Math.round((Date.now() - from) / 100) / 10;
  const concurrency = input.concurrency ?? 48;
  let early: EarlySender | null = null;
  let thread: EngineThread | null = null;
  try {
    // ---- 1. Partition the snapshot by profile key (on a worker thread) -----------------------
    const done = new Set(progress.buckets.done);
    // With model.json naming every table's columns, a bad mapping stops the run before anything is read or sent.
    const columnsKnown = snapshot.tables.every((t) => t.columns.length > 0);
    if (columnsKnown) {
      const seen: ColumnsSeen = { found: new Set(), missing: new Map() };
      for (const t of snapshot.tables) checkedMapper(def, t.segment, def.segments.indexOf(t.segment), t.columns, seen);
      checkMappedColumns(seen);
    }
    const sendWhileReading = columnsKnown && done.size === 0 ? tableToSendWhileReading(input, stateMatches) : null;
    if (sendWhileReading) early = new EarlySender(tempDir, input.braze, concurrency);
    const rowsOf = (bytes: number) => Math.ceil(bytes / TYPICAL_ROW_BYTES);
    thread = new EngineThread({
      def,
      bucketCount,
      tempDir,
      done: [...done],
      early: sendWhileReading
        ? { segment: sendWhileReading.segment, otherRows: rowsOf(snapshot.totalBytes - tableBytes(sendWhileReading)), tableRows: rowsOf(tableBytes(sendWhileReading)) }
        : null,
      definitionFp,
      fullSync: input.fullSync,
    }, snapshot.totalBytes / bucketCount);
    const read = await thread.partition({
      // The table sent while reading goes last, once the other segments' profile keys are known.
      tables: sendWhileReading ? [...snapshot.tables.filter((t) => t !== sendWhileReading), sendWhileReading] : snapshot.tables,
      container: input.ciBlobs.getContainerClient(def.source.container),
      early,
      shouldYield: input.shouldYield,
      onProgress: (rowsRead, segmentRows) => {
        progress.counts.rowsRead = rowsRead;
        for (const [segment, rows] of Object.entries(segmentRows)) progress.segments[segment] = { rows };
        void report().catch(() => undefined);
      },
    });
    checkMappedColumns({ found: new Set(read.foundFields), missing: new Map(read.missingFields) });
    const { rowsRead, rowsRejected } = read;
    for (const [segment, rows] of Object.entries(read.segmentRows)) progress.segments[segment] = { rows };
    rejectedRowsTotal += rowsRejected;
    for (const row of read.rejectedRows) rejectedRows.push(row);
    // Rows that never became a profile count as rejected profiles, so the sum still holds.
    const bucketTotals: BucketCounts = { ...emptyBucketCounts(), ...input.resumeFrom?.bucketCounts };
    const combine = () => {
      progress.bucketCounts = { ...bucketTotals };
      progress.counts = {
        rowsRead,
        profiles: bucketTotals.profiles + rowsRejected,
        unchanged: bucketTotals.unchanged,
        sent: bucketTotals.sent,
        removed: bucketTotals.removed,
        rejected: bucketTotals.rejected + rowsRejected,
        failed: bucketTotals.failed,
        removalsFailed: bucketTotals.removalsFailed,
      };
    };
    combine();
    progress.phase = 'sending';
    progress.timings.readingSeconds = seconds(started);
    const sendingStarted = Date.now();
    await report(true);

    // ---- 2. Bucket by bucket: merge, diff, send, record -------------------------------------
    // Buckets are prepared (read, merged, diffed) on the thread a couple ahead of the one being
    // sent. Their objects flow into one sender, so batches run on across bucket boundaries
    // instead of draining at each. A bucket's state is written as soon as Braze has answered for
    // all of its objects, and checkpoints stay in bucket order.
    const pending = Array.from({ length: bucketCount }, (_, b) => b).filter((b) => !done.has(b));
    const engineThread = thread;
    const preparing: Promise<ReceivedBucket>[] = [];
    let prepareNext = 0;
    const prepareAhead = () => {
      while (preparing.length < BUCKETS_PREPARED_AHEAD && prepareNext < pending.length) {
        const bucket = pending[prepareNext++]!;
        const prepared = input.state.readBucketText(bucket).then((text) => engineThread.prepare(bucket, text));
        prepared.catch(() => undefined); // awaited in turn
        preparing.push(prepared);
      }
    };
    let reports: Promise<void> = Promise.resolve();
    const sender = new BatchSender<{ bucket: BucketOutcomes; index: number }>(input.braze, concurrency, (items, outcomes) => {
      items.forEach((item, j) => item.bucket.take(item.index, outcomes[j]!));
      reports = reports.then(() => report());
    });
    // Once sending fails (a revoked key…), no more outcomes will come: stop waiting for them.
    const unanswered = new Set<BucketOutcomes>();
    sender.failed.catch((e: unknown) => {
      for (const b of unanswered) b.fail(e);
    });
    let checkpointed: Promise<void> = Promise.resolve();
    let previousAnswered: Promise<unknown> = Promise.resolve();
    // Preparing starts while the last objects sent while reading are still under way. Should Braze
    // not take some of them, the buckets prepared meanwhile did not know and are prepared again.
    prepareAhead();
    if (early) {
      await early.finish();
      if (!early.allDelivered) {
        for (const outcome of await Promise.allSettled(preparing.splice(0))) if (outcome.status === 'fulfilled') outcome.value.release();
        prepareNext = 0;
        prepareAhead();
      }
    }
    for (let i = 0; i < pending.length; i++) {
      if (input.shouldYield?.()) {
        await sender.finish();
        await checkpointed;
        return { progress, rejectedRows, rejectedRowsTotal, complete: false };
      }
      const { prepared, objects, release } = await preparing.shift()!;
      prepareAhead();
      const count = objects.ends.length;
      const answered = new BucketOutcomes(count);
      unanswered.add(answered);
      void answered.all.then(() => {
        unanswered.delete(answered);
        release(); // Braze has answered for every object: their bytes are no longer needed
      }, () => undefined);
      for (let j = 0; j < count; j++) {
        sender.add(objectAt(objects, j), { bucket: answered, index: j });
        const wait = sender.room();
        if (wait) await wait;
      }
      // At most two buckets under way: the time box is looked at between buckets, so sending must
      // not run far ahead of it. The previous bucket's last objects may still wait for a full batch.
      if (sender.held > count) sender.flush();
      await previousAnswered;
      previousAnswered = answered.all;
      const stateWritten = answered.all.then((outcomes) => {
        const lines = recordOutcomes(prepared, outcomes, reject);
        return prepared.stateChanged || count > 0 ? input.state.writeBucket(prepared.bucket, definitionFp, prepared.kept, lines) : undefined;
      });
      stateWritten.catch(() => undefined); // awaited below, after the previous checkpoint
      const previousCheckpoint = checkpointed;
      checkpointed = (async () => {
        await previousCheckpoint;
        await stateWritten;
        // Commit the bucket: its counts and omissions join the run's only now, with its checkpoint.
        const totals = prepared.counts;
        for (const k of Object.keys(totals) as (keyof BucketCounts)[]) bucketTotals[k] += totals[k];
        for (const [attr, n] of Object.entries(prepared.omitted)) progress.omittedAttributes[attr] = (progress.omittedAttributes[attr] ?? 0) + n;
        done.add(prepared.bucket);
        progress.buckets.done = [...done].sort((a, b) => a - b);
        progress.timings.sendingSeconds = seconds(sendingStarted);
        combine();
        await report(true);
      })();
      checkpointed.catch(() => undefined); // awaited on the next turn or after the loop
    }
    await sender.finish();
    await reports;
    await checkpointed;
    progress.phase = 'done';
    combine();
    await report(true);
    return { progress, rejectedRows, rejectedRowsTotal, complete: true };
  } catch (e) {
    if (e instanceof BrazeFatalError || e instanceof PartitionAborted) throw new RunAborted(e.message);
    throw e;
  } finally {
    await early?.settle();
    await thread?.close();
    rmSync(tempDir, { recursive: true, force: true });
  }
}

/** Fewest bytes a CSV row is assumed to take, for time estimates that err on the long side. */
const MIN_ROW_BYTES = 20;
/** A typical profile row's size, to size key filters (a wrong guess costs speed, never correctness). */
const TYPICAL_ROW_BYTES = 50;

const tableBytes = (t: SegmentTable) => t.partitions.reduce((n, p) => n + p.sizeBytes, 0);

/**
 * The segment to send while reading, if any: the largest, when every profile is going to Braze
 * anyway (no state under these settings, or a full sync) on a run's first attempt, and its
 * profiles can go out well within the attempt's time box even at a small size per row.
 */
function tableToSendWhileReading(input: EngineInput, stateMatches: boolean): SegmentTable | null {
  if (!input.firstAttempt || (stateMatches && !input.fullSync) || input.snapshot.tables.length === 0) return null;
  const largest = input.snapshot.tables.reduce((a, b) => (tableBytes(b) > tableBytes(a) ? b : a));
  const estimatedMs = (tableBytes(largest) / MIN_ROW_BYTES / 75 / input.braze.requestsPerSecond) * 1000;
  return input.timeBudgetMs === undefined || estimatedMs < input.timeBudgetMs / 2 ? largest : null;
}

/** Buckets being prepared on the engine thread while one is sent: enough to keep the thread busy. */
const BUCKETS_PREPARED_AHEAD = 2;
