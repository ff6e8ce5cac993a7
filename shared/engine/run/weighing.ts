// Weighing a run as it goes (EngineInput.weigh): the guard's figures taken from the run's own
// prepared buckets, set aside unsent (staged-buckets.ts) until the guard decides, so a change run
// reads and diffs its snapshot once, not once for a dry run and again to send.
import type { RunCounts } from './progress';

export interface Weighing {
  /** Past this time (ms since the epoch) no more buckets are prepared: the run is not weighed whole. */
  deadline: number;
  /** Each object the run would send, as its bucket is set aside (the guard counts data points). */
  object?: (bytes: Uint8Array) => void;
  /** Once every bucket is set aside (or could not be): true sends them, false holds the run, nothing sent. */
  decide: (run: WeighedRun) => Promise<boolean>;
}

export interface WeighedRun {
  /** Why not every bucket was prepared (the figures are then those of the buckets that were); null: all were. */
  unweighed: 'time' | 'disk' | null;
  /** The run's counts as if Braze took every object. */
  counts: RunCounts;
  segments: Record<string, { rows: number }>;
  objects: number;
  /** Requests the run sends the objects in (batched as the bucket pipeline batches them). */
  requests: number;
}
