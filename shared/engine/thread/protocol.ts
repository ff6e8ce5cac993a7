// What the main thread and the engine thread (engine-thread.ts) say to each other: the partition
// step's settings and summary, and the messages each way.
import type { ExportDefinition } from '../../exports/schema';
import type { PreparedBucket } from '../diff/bucket-step';
import type { EarlyBatch } from '../early-send/offers';
import type { TableColumns } from '../read/row-mapper';
import type { HandedObjects } from '../send/object-bytes';
import { transferredWith, type Handed, type RingShare } from './shared-ring';

export interface PartitionInit {
  def: ExportDefinition;
  bucketCount: number;
  tempDir: string;
  /** Buckets finished by an earlier attempt: their rows are skipped. */
  done: number[];
  /** The segment whose one-segment profiles are sent while reading (read last), if any. */
  early: { segment: string; otherRows: number; tableRows: number } | null;
  /** For the bucket step that follows on the reading thread. */
  definitionFp: string;
  /** Which of the run's spill files this thread's partition step writes rows to (see ROW_SPILLS). */
  spillKind: string;
  /** The run this is an attempt of: checkpoints of what it sent while reading name it. */
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

/** Shared memory between the threads: CSV chunks in, objects to send out (see shared-ring.ts). */
export interface EngineRings {
  chunks: RingShare;
  objects: RingShare;
}

/** Messages to the engine thread (engine-thread.ts): the partition step, then buckets to prepare. */
export type ToEngineThread =
  | { t: 'init'; init: PartitionInit; rings: EngineRings }
  | { t: 'partition'; spec: PartitionSpec }
  | ({ t: 'chunk' } & Handed)
  | { t: 'end' }
  | { t: 'stopSending' }
  | { t: 'earlyMark' }
  | { t: 'brazeBehind' }
  | { t: 'takeIn' }
  | { t: 'finish' }
  /** `stateFile`: where the bucket's state blob was downloaded to (the thread removes it), or null: none. */
  | { t: 'prepare'; bucket: number; stateFile: string | null };

/** Messages from the engine thread. */
export type FromEngineThread =
  | ({ t: 'send' } & EarlyBatch<HandedObjects>)
  | { t: 'chunkDone' }
  /** Every object sent while reading so far was handed over before this; state-line file sizes per bucket. */
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
  if (m.t === 'prepared') return [...transferredWith(m.prepared.toSend.objects), ...transferredWith(m.prepared.kept)];
  return [];
}
