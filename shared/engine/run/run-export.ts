// The export engine: one run of one export over one snapshot. The CPU work happens on a worker
// thread (run/engine-thread.ts); this thread downloads, sends and keeps the books.
//   0. Open the sync state (state/open-sync-state.ts): bucket count, and whether a diff is worth it.
//   1. Read (run/read-snapshot.ts → read/partition-step.ts on the thread): stream every CSV
//      partition, map rows to partial profiles, spill them to temp files by hash bucket of the
//      profile key (memory does not grow with the snapshot). With nothing to diff against,
//      profiles that can only have one row are sent early (early-send/).
//   2. Per bucket (run/bucket-pipeline.ts; diff/bucket-step.ts on the thread): merge each profile
//      across segments, diff against the sync state, send only what changed (plus `null`
//      membership for profiles that left), then record what Braze accepted.
// The books (progress.ts) hold `profiles = sent + unchanged + rejected + failed` at every checkpoint.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import os from 'node:os';
import type { BlobServiceClient } from '@azure/storage-blob';
import { BrazeFatalError, type BrazeClient } from '../../braze/client';
import type { ExportDefinition } from '../../exports/schema';
import type { Snapshot } from '../../snapshot/locate';
import { openSyncState } from '../state/open-sync-state';
import type { Manifest, SyncStateStore } from '../state/sync-state';
import { RunBooks, type ResumeFrom, type RunProgress } from './progress';
import { PartitionAborted } from '../read/column-check';
import { SnapshotReading } from './read-snapshot';
import { BucketPipeline } from './bucket-pipeline';
import { createRunTempDir, spillWontFit } from '../spill/run-temp-dir';
import { RunStopped } from '../control/stop';
import type { RejectedRow } from '../thread/protocol';
import type { Weighing } from './weighing';

export interface EngineInput {
  definition: ExportDefinition;
  snapshot: Snapshot;
  ciBlobs: BlobServiceClient;
  state: SyncStateStore;
  braze: BrazeClient;
  fullSync: boolean;
  /** Counts of buckets finished by an earlier attempt of this run (resume). */
  resumeFrom?: ResumeFrom;
  onProgress?: (progress: RunProgress) => Promise<void> | void;
  /** Asked between buckets: true = stop now (time box), the caller re-queues the continuation. */
  shouldYield?: () => boolean;
  /** Asked all the time: true = send nothing more (cancel, lease lost); batches in flight are answered and recorded. */
  shouldStop?: () => boolean;
  /** Called before each bucket's state is written; throws when this worker may no longer write (its lease is gone). */
  beforeCheckpoint?: () => Promise<void>;
  /**
   * Asked before a bucket's objects go, with the requests they need: false = not now (the
   * connection's hourly cap is used up); the run stops before that bucket, to be continued.
   */
  beforeBucket?: (requests: number) => Promise<boolean>;
  /** The run's first attempt: profiles may be sent early (a continuation never does). */
  firstAttempt?: boolean;
  /**
   * Requests a second Braze will take from this run (the connection's budget, or the limit Braze
   * reported when lower); default: the client's budget. On one core, whether sending early pays.
   */
  pace?: number;
  /** How long this attempt may take; sending early is skipped when it might not fit. */
  timeBudgetMs?: number;
  /** The run this is an attempt of (default: one of its own, for callers outside the worker). */
  runId?: string;
  /** The sync state's manifest, read already by the caller under this attempt's lease (saves a round trip). */
  manifestRead?: Promise<Manifest | null>;
  /** How often what was sent early is checkpointed (default 30 s): a killed worker's successor resends at most that much. */
  earlyCheckpointMs?: number;
  /** Snapshot bytes per bucket, when the export has no sync state yet. */
  bucketTargetBytes?: number;
  /** Batches in flight at once (the request budget paces them); by default the client's (BrazeClient.requestsInFlight). */
  concurrency?: number;
  tempRoot?: string;
  /**
   * Weighs the run before it sends anything (the guard, on a change run: see runs/guard.ts): every
   * bucket is prepared and set aside, and sent only if `decide` says so. Nothing is sent early, and
   * `onProgress` hears nothing until the run is let go.
   */
  weigh?: Weighing;
}

export interface EngineResult {
  progress: RunProgress;
  rejectedRows: RejectedRow[];
  rejectedRowsTotal: number;
  /** false when the run stopped early to be continued. */
  complete: boolean;
  /** The run stopped because shouldStop said so (not the time box). */
  stopped: boolean;
  /** Weighed (EngineInput.weigh) and held: nothing was sent. */
  held: boolean;
}

/** The run cannot go on (bad mapping, bad key…): nothing more is sent; the message is for the user. */
export class RunAborted extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunAborted';
  }
}

export async function runExport(input: EngineInput): Promise<EngineResult> {
  const { definition: def, braze } = input;
  const tempDir = createRunTempDir(input.tempRoot ?? os.tmpdir());
  const { definitionFp, bucketCount, hadState } = await openState(input, tempDir).catch((e: unknown) => {
    rmSync(tempDir, { recursive: true, force: true });
    throw e;
  });
  const books = new RunBooks(def, bucketCount, braze, input.resumeFrom, input.onProgress);
  // A run being weighed records no progress: one held, or whose worker dies meanwhile, is as it was.
  books.muted = !!input.weigh;
  const result = (complete: boolean, stopped = false, held = false): EngineResult => ({
    progress: books.progress,
    rejectedRows: books.rejectedRows,
    rejectedRowsTotal: books.rejectedRowsTotal,
    complete,
    stopped,
    held,
  });
  const concurrency = input.concurrency ?? braze.requestsInFlight;
  const runId = input.runId ?? randomUUID();
  const reading = new SnapshotReading({
    def,
    snapshot: input.snapshot,
    ciBlobs: input.ciBlobs,
    braze,
    bucketCount,
    definitionFp,
    hadState,
    fullSync: input.fullSync,
    // A run weighed first sends nothing before the guard decides.
    firstAttempt: (input.firstAttempt ?? false) && !input.weigh,
    pace: input.pace ?? braze.requestsPerSecond,
    timeBudgetMs: input.timeBudgetMs,
    done: books.bucketsDone,
    tempDir,
    concurrency,
    state: input.state,
    earlyCheckpointMs: input.earlyCheckpointMs ?? 30_000,
    runId,
  });
  try {
    await books.readingDone(await reading.read(books, input.shouldYield, input.shouldStop));
    const pipeline = new BucketPipeline({
      threads: reading.threads!,
      state: input.state,
      braze,
      books,
      definitionFp,
      concurrency,
      shouldStop: input.shouldStop,
      beforeCheckpoint: input.beforeCheckpoint,
      beforeBucket: input.beforeBucket,
      lastEarlyCheckpoint: reading.lastEarlyCheckpoint,
      tempDir,
      runId,
      noState: !hadState,
    });
    const weighed = input.weigh ? await pipeline.weigh(input.weigh, books) : 'send';
    if (weighed !== 'send') return result(false, weighed === 'stopped', weighed === 'held');
    books.muted = false;
    if (!(await pipeline.run(reading.early, input.shouldYield))) return result(false, pipeline.stopped);
    await books.finished();
    return result(true);
  } catch (e) {
    // Stopped while reading: nothing was checkpointed; what was sent meanwhile is sent again by a later run.
    if (e instanceof RunStopped) return result(false, true);
    if (e instanceof BrazeFatalError || e instanceof PartitionAborted) throw new RunAborted(e.message);
    throw e;
  } finally {
    await reading.close();
    rmSync(tempDir, { recursive: true, force: true });
  }
}

/**
 * Before anything is read or written: whether the spill fits, measured once the folders of dead
 * attempts are gone (createRunTempDir removes them), for the buckets this attempt still reads; then
 * the sync state opened.
 */
function openState(input: EngineInput, tempDir: string) {
  const { snapshot } = input;
  const done = input.resumeFrom?.buckets;
  const tooBig = spillWontFit(
    tempDir,
    done ? (snapshot.totalBytes * (done.total - done.done.length)) / done.total : snapshot.totalBytes,
  );
  if (tooBig) return Promise.reject(new RunAborted(tooBig));
  const { state, definition, braze } = input;
  return openSyncState(
    state,
    definition,
    braze.destination,
    snapshot.totalBytes,
    done?.total,
    input.bucketTargetBytes,
    input.manifestRead,
  );
}
