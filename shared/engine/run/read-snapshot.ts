// Reading the snapshot (the partition step, on the engine thread): the mapping is checked against
// model.json's columns first, the segment to send early is chosen, and every partition is
// downloaded and handed to the thread. The thread (and the early sender) stay open for the
// bucket step; close() ends them.
import os from 'node:os';
import type { BlobServiceClient } from '@azure/storage-blob';
import type { BrazeClient } from '../../braze/client';
import { MAX_OBJECTS_PER_REQUEST } from '../../braze/batch';
import type { ExportDefinition } from '../../exports/schema';
import type { SegmentTable, Snapshot } from '../../snapshot/locate';
import { BrazeObjectWriter } from '../profile/object-writer';
import type { SyncStateStore } from '../state/sync-state';
import { EarlyCheckpoints, NO_CHECKPOINT, type LastCheckpoint } from '../send/early-checkpoints';
import { EarlySender } from '../send/early-sender';
import { EngineThreads } from './engine-threads';
import type { PartitionSummary } from '../thread/protocol';
import { checkedMapper, checkMappedColumns, type ColumnsSeen } from '../read/column-check';

/** Where reading reports how far it is: rows read, and each of Braze's answers to what is sent early. */
export interface ReadingProgress {
  reading(rowsRead: number, segmentRows: Record<string, number>): void;
  /** Sent early and answered (the run's requests sent): a small export at a slow pace sends long after its last row. */
  answered(): void;
}

interface ReadPlan {
  def: ExportDefinition;
  snapshot: Snapshot;
  ciBlobs: BlobServiceClient;
  braze: BrazeClient;
  bucketCount: number;
  definitionFp: string;
  /**
   * The export has sync state: nothing is sent early. What Braze holds must be known
   * before a profile's object is written — values to clear, membership to withdraw — and only the
   * bucket step knows it.
   */
  hadState: boolean;
  fullSync: boolean;
  firstAttempt: boolean;
  /** Requests a second Braze will take from this run (EngineInput.pace). */
  pace: number;
  timeBudgetMs: number | undefined;
  /** Buckets finished by an earlier attempt: their rows are skipped. */
  done: ReadonlySet<number>;
  tempDir: string;
  concurrency: number;
  /** The export's sync state: checkpoints of what is sent early go beside it. */
  state: SyncStateStore;
  /** How often what was sent early is checkpointed. */
  earlyCheckpointMs: number;
  /** The run this is an attempt of (named in those checkpoints). */
  runId: string;
}

/** Fewest bytes a CSV row is assumed to take, for time estimates that err on the long side. */
const MIN_ROW_BYTES = 20;
/** Seconds of sending (at the connection's budget) that reading may queue ahead of Braze. */
const EARLY_BACKLOG_SECONDS = 0.6;
/**
 * On one core, a first run that Braze takes more requests a second from than this (a budget over
 * 1,800 per 3 s, and no lower limit reported by Braze) is bound by the core, not by Braze (a request
 * of 75 wide profiles takes ~0.75 ms of CPU from reading to sending when the snapshot is read first,
 * ~1.5 ms when sent early). Sending early then only adds its own work (the other segments read for
 * their keys first, key filters, their rows kept and taken in later: ~9 CPU-s per million wide
 * profiles), and the run ends later. Below it, Braze sets the pace
 * and sending early hides the reading. Figures: docs/performance.md.
 */
const ONE_CORE_EARLY_MAX_REQUESTS_PER_SECOND = 600;

const tableBytes = (t: SegmentTable) => t.partitions.reduce((n, p) => n + p.sizeBytes, 0);

export class SnapshotReading {
  /** Sends early, when a segment was chosen for it. */
  early: EarlySender | null = null;
  threads: EngineThreads | null = null;
  /** The last checkpoint of what was sent early (EarlyCheckpoints.final). */
  lastEarlyCheckpoint: LastCheckpoint = NO_CHECKPOINT;
  /** Checkpoints what is sent early, when anything is. */
  private checkpoints: EarlyCheckpoints | null = null;

  constructor(private readonly plan: ReadPlan) {}

  /** Reads every partition; `progress` gets live row counts and Braze's answers. Throws PartitionAborted for a bad mapping. */
  async read(progress: ReadingProgress, shouldYield?: () => boolean, shouldStop?: () => boolean): Promise<PartitionSummary> {
    const { def, snapshot } = this.plan;
    // With model.json naming every table's columns, a bad mapping stops the run before anything is read or sent.
    const columnsKnown = snapshot.tables.every((t) => t.columns.length > 0);
    if (columnsKnown) {
      const seen: ColumnsSeen = { found: new Set(), missing: new Map() };
      for (const t of snapshot.tables) checkedMapper(def, t.segment, def.segments.indexOf(t.segment), t.columns, seen);
      checkMappedColumns(seen);
    }
    const sendEarly = columnsKnown && this.plan.done.size === 0 ? this.tableToSendEarly() : null;
    // Reading may run this far ahead of Braze: what is queued keeps Braze busy while reading slows
    // down (a stretch of rows with few to send), and when it ends, while the first buckets are
    // prepared (a few tenths of a second each), instead of Braze idling. A checkpoint covers only
    // what Braze has answered, so the queue is kept within a tenth of the checkpoint interval: a
    // killed worker's successor resends at most that much more.
    const backlogSeconds = Math.min(EARLY_BACKLOG_SECONDS, this.plan.earlyCheckpointMs / 10_000);
    const backlog = Math.max(this.plan.concurrency, Math.ceil(this.plan.braze.requestsPerSecond * backlogSeconds));
    if (sendEarly) this.early = new EarlySender(this.plan.tempDir, this.plan.braze, backlog, () => progress.answered());
    this.threads = new EngineThreads(
      {
        def,
        bucketCount: this.plan.bucketCount,
        tempDir: this.plan.tempDir,
        done: [...this.plan.done],
        early: sendEarly
          ? {
              segment: sendEarly.segment,
              otherBytes: snapshot.totalBytes - tableBytes(sendEarly),
              tableBytes: tableBytes(sendEarly),
            }
          : null,
        definitionFp: this.plan.definitionFp,
        runId: this.plan.runId,
        fullSync: this.plan.fullSync,
        tableColumns: Object.fromEntries(snapshot.tables.map((t) => [t.segment, t.columns])),
      },
      snapshot.totalBytes / this.plan.bucketCount,
      // On one core a second reading thread only contends with the first.
      this.plan.bucketCount > 1 && !sendEarly && os.availableParallelism() > 1,
      this.plan.hadState,
    );
    const writer = new BrazeObjectWriter(def);
    const checkpoints = (this.checkpoints = this.early
      ? new EarlyCheckpoints(
          this.threads.reader,
          this.early,
          this.plan.state,
          this.plan.tempDir,
          {
            definition: this.plan.definitionFp,
            fields: writer.fields,
            membership: writer.membershipNames,
            sentBy: this.plan.runId,
          },
          this.plan.earlyCheckpointMs,
          this.plan.bucketCount,
        )
      : null);
    const read = await this.threads.partition({
      // The table sent early goes last, once the other segments' profile keys are known.
      tables: sendEarly ? [...snapshot.tables.filter((t) => t !== sendEarly), sendEarly] : snapshot.tables,
      container: this.plan.ciBlobs.getContainerClient(def.source.container),
      early: this.early,
      shouldYield,
      shouldStop,
      onChunkSent: checkpoints ? () => checkpoints.maybeStart() : undefined,
      onProgress: (rows, segmentRows) => progress.reading(rows, segmentRows),
    });
    // The last checkpoint goes on while the bucket step starts sending and writing buckets.
    if (checkpoints) this.lastEarlyCheckpoint = checkpoints.final();
    checkMappedColumns({ found: new Set(read.foundFields), missing: new Map(read.missingFields) });
    return read;
  }

  async close(): Promise<void> {
    await this.early?.settle();
    // A checkpoint still being written when reading stopped lands before the next attempt looks for them.
    await this.checkpoints?.settle();
    await this.threads?.close();
  }

  /**
   * The segment to send early, if any: the largest, when every profile is going to Braze
   * and Braze holds nothing of the export yet (no sync state), on a run's first attempt, and its
   * profiles can go out well within the attempt's time box even at a small size per row; on one
   * core, only while Braze sets the pace.
   */
  private tableToSendEarly(): SegmentTable | null {
    const { snapshot, firstAttempt, hadState, timeBudgetMs, pace } = this.plan;
    if (!firstAttempt || hadState || snapshot.tables.length === 0) return null;
    if (os.availableParallelism() === 1 && pace > ONE_CORE_EARLY_MAX_REQUESTS_PER_SECOND) return null;
    const largest = snapshot.tables.reduce((a, b) => (tableBytes(b) > tableBytes(a) ? b : a));
    const estimatedMs = (tableBytes(largest) / MIN_ROW_BYTES / MAX_OBJECTS_PER_REQUEST / pace) * 1000;
    return timeBudgetMs === undefined || estimatedMs < timeBudgetMs / 2 ? largest : null;
  }
}
