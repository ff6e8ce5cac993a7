// What a verification run keeps on its run row: where Braze's export is, and what the comparison found.
import type { DriftCounts, KindCounts, SentValues } from './drift';

export interface VerifyRecord {
  /** The Braze segment read back (the export's proofSegmentId when the run started). */
  proofSegmentId?: string;
  /** A verification by sample: this many profiles read back through /users/export/ids instead of the segment. */
  sample?: number;
  /** Why a verification asked for in full reads a sample (what the connection's key can do). */
  sampledBecause?: string;
  /** Profiles sampled, and how far the result holds ("0 drift in 2,000 sampled profiles: drift below 0.15 % at 95 %"). */
  sampled?: number;
  confidence?: string;
  /** How Braze delivers the files: a URL in its answer, or the connection's Blob container. */
  delivery?: 'url' | 'container';
  /** Braze's name for this export's files; set once requested, so a later attempt never asks twice. */
  objectPrefix?: string;
  requestedAt?: string;
  /**
   * Container delivery: the listing of Braze's files as last seen (a digest) and since when it has not
   * changed, so an attempt re-queued while waiting continues the stable-listing window.
   */
  listing?: { digest: string; unchangedSince: string };
  /** When the files were read and compared. */
  comparedAt?: string;
  /**
   * The export run the sync state was as of when compared (the export's last run, null: none). A
   * repair is refused once another export run has ended since: its drift may no longer be drift.
   */
  stateRun?: string | null;
  counts?: DriftCounts;
  /**
   * The stale and missing profiles looked up in the snapshot the state was built from (to name a stale
   * profile's fields, a missing one's segments, and to tell a difference only in fields Braze cannot
   * export): the snapshot's id, how many were looked up, how many could not be told, and why.
   */
  sentValues?: SentValues;
  /** Mapped standard fields Braze cannot export: left out of the comparison, not verified. */
  unverifiableFields?: string[];
  bySegment?: Record<string, KindCounts>;
  /** `container/name` of the drift CSV (null: no drift). */
  driftReport?: string | null;
  /** Seconds spent downloading Braze's files once they were ready, and comparing them (Braze's own export time apart). */
  timings?: { downloadSeconds: number; compareSeconds: number };
  /** The outcome in words ("No drift: …"). */
  summary?: string;
  /** A repair of this run's drift: the export run it queued. */
  repair?: { runId: string; at: string; by: string; profiles: number; withdrawals: number };
}
