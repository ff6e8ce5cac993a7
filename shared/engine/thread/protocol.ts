// What the main thread and the engine thread (run/engine-thread.ts) say to each other, and the
// types those messages carry: the partition step's settings and summary, a prepared bucket, a batch
// sent early, a checkpoint mark. Below the stages, so each stage and both threads share one contract.
import type { BlobGrant } from '../../store/blob-grant';
import type { ExportDefinition } from '../../exports/schema';
import type { BucketHeader, BucketOutcome } from '../state/state-line';
import type { TableColumns } from '../profile/row-mapper';
import type { HandedObjects, ObjectList } from './object-bytes';
import { transferredWithLines, type HandedLines } from './send-lines';
import { transferredWith, type Handed, type RingShare, type RingWriter } from './shared-ring';

export interface PartitionInit {
  def: ExportDefinition;
  bucketCount: number;
  tempDir: string;
  /** Buckets finished by an earlier attempt: their rows are skipped. */
  done: number[];
  /** The segment whose one-segment profiles are sent early (read last), if any. */
  early: { segment: string; otherBytes: number; tableBytes: number } | null;
  /** For the bucket step that follows on the reading thread. */
  definitionFp: string;
  /** Which of the run's spill files this thread's partition step writes rows to (see ROW_SPILLS). */
  spillKind: string;
  /** The run this is an attempt of: checkpoints of what it sent early name it. */
  runId: string;
  fullSync: boolean;
  /** Each segment's columns as model.json gives them: how spilled rows are typed. */
  tableColumns: TableColumns;
}

export interface PartitionSpec {
  segment: string;
  columns: { name: string; dataType?: string }[];
  blobName: string;
  delimiter: string;
  hasHeader: boolean | undefined;
}

export interface RejectedRow {
  segment: string;
  partition: string;
  /** Data record number within the partition (1 = first row after any header). */
  record: number | '';
  profileId: string;
  reason: string;
}

export interface PartitionSummary {
  rowsRead: number;
  rowsRejected: number;
  segmentRows: Record<string, number>;
  rejectedRows: RejectedRow[];
  /** Mapping fields some table has a column for, and those some table lacks (field → column). */
  foundFields: string[];
  missingFields: [string, string][];
}

/** What finished buckets add up to: carried across a resumed run's attempts. */
export interface BucketCounts {
  profiles: number;
  unchanged: number;
  sent: number;
  removed: number;
  rejected: number;
  failed: number;
  removalsFailed: number;
  /** Profiles the export had not delivered before, whatever Braze then said (the rest of those sent had changed). */
  newProfiles: number;
}

export const emptyBucketCounts = (): BucketCounts => ({
  profiles: 0,
  unchanged: 0,
  sent: 0,
  removed: 0,
  rejected: 0,
  failed: 0,
  removalsFailed: 0,
  newProfiles: 0,
});

/** Adds `from`'s counts into `into`. */
export function addBucketCounts(into: BucketCounts, from: BucketCounts): void {
  for (const k of Object.keys(into) as (keyof BucketCounts)[]) into[k] += from[k];
}

/**
 * What a bucket sends, one entry per object, column by column. State lines come ready-made for
 * either outcome.
 */
export interface ToSend {
  /** The objects, as UTF-8 bytes (see object-bytes.ts). */
  objects: HandedObjects;
  /**
   * Each object's key, its state line once Braze took it ('' for a leaver: it leaves the state) and
   * the state line of what Braze had before ('' if nothing: kept if the object is not delivered), as
   * bytes (see send-lines.ts).
   */
  lines: HandedLines;
  /**
   * 1 for a profile that left every segment (its object removes the membership); 2 for the user a
   * profile was known by before its identity changed (its object withdraws the membership there).
   */
  leaving: number[];
}

export interface PreparedBucket {
  bucket: number;
  /** The header the bucket's state blob is written with. */
  header: BucketHeader;
  toSend: ToSend;
  /** State lines of the profiles not being sent (unchanged, or delivered early), as bytes (see StateBytes), after the objects in the ring. */
  kept: Handed;
  /** The state blob must be rewritten even if nothing is sent now. */
  stateChanged: boolean;
  counts: BucketCounts;
  omitted: Record<string, number>;
  /** Profiles sent early that Braze refused. */
  refusedEarly: { key: string; reason: string }[];
  /** An earlier attempt of this run wrote the bucket's state, and what became of it then (see BucketOutcome); else null. */
  doneBefore: BucketOutcome | null;
}

/** Objects ready to send, with the bucket and key of each. */
export interface EarlyBatch<Objects = ObjectList> {
  objects: Objects;
  buckets: number[];
  keys: string[];
}

/** A checkpoint mark: the first `batches` batches sent early hold every profile whose state line is within `sizes`. */
export interface EarlyMark {
  batches: number;
  sizes: number[];
}

/**
 * Shared memory between the threads: CSV chunks in, objects to send out, and the state lines of a
 * prepared bucket (see shared-ring.ts); kept with its thread for the next run when drained. State
 * lines have a ring of their own: they are needed until the bucket's state is written, after Braze
 * answered for its objects, and in the objects' ring they held back the space of the objects
 * after them (space comes back in the order written).
 */
export interface EngineRings {
  chunks: RingShare;
  objects: RingShare;
  state: RingShare;
}

/** The rings a prepared bucket is written to, on the engine thread. */
export interface BucketRings {
  objects: RingWriter;
  state: RingWriter;
}

/** Messages to the engine thread (engine-thread.ts): the partition step, then buckets to prepare. */
export type ToEngineThread =
  | { t: 'init'; init: PartitionInit; rings: EngineRings }
  /**
   * `grant`: the thread downloads the partition itself and ends it (else chunks follow, then `end`);
   * `next`: the grant of the partition it will download next, whose request goes at once.
   */
  | { t: 'partition'; spec: PartitionSpec; grant: BlobGrant | null; next?: BlobGrant | null }
  | ({ t: 'chunk' } & Handed)
  | { t: 'end' }
  | { t: 'stopSending' }
  | { t: 'earlyMark' }
  | { t: 'brazeBehind' }
  | { t: 'takeIn' }
  | { t: 'finish' }
  /** `stateFile`: where the bucket's state blob was downloaded to (the thread removes it), or null: none. */
  | { t: 'prepare'; bucket: number; stateFile: string | null }
  /** The run ended cleanly: drop its state, the thread waits for the next run's init (run/thread-pool.ts). */
  | { t: 'reset' };

/** Messages from the engine thread. */
export type FromEngineThread =
  | ({ t: 'send' } & EarlyBatch<HandedObjects>)
  | { t: 'chunkDone' }
  /** Every object sent early so far was handed over before this; state-line file sizes per bucket. */
  | { t: 'earlyMarked'; sizes: number[] }
  | { t: 'progress'; rowsRead: number; segmentRows: Record<string, number> }
  | { t: 'partitionDone' }
  | { t: 'tookIn'; more: boolean; sent: boolean }
  | { t: 'finished'; summary: PartitionSummary }
  | { t: 'prepared'; prepared: PreparedBucket }
  | { t: 'error'; message: string; aborted: boolean };

/** Buffers a message hands over to the receiving thread instead of copying. */
export function transferredBy(m: FromEngineThread): ArrayBuffer[] {
  if (m.t === 'send') return transferredWith(m.objects);
  if (m.t === 'prepared')
    return [
      ...transferredWith(m.prepared.toSend.objects),
      ...transferredWithLines(m.prepared.toSend.lines),
      ...transferredWith(m.prepared.kept),
    ];
  return [];
}
