// What one attempt of a run works with, as the worker (worker.ts) and the attempts of each kind of
// run (export-attempt.ts, cleanup-attempt.ts, verify-attempt.ts) go through it.
import type { BrazeClient } from '../braze/client';
import { StateTakenOver, type SyncStateStore } from '../engine';
import type { ConnectionRecord } from '../store/connections';
import type { ExportRecord } from '../store/exports';
import type { RunRecord } from '../store/runs';
import type { AttemptLimits } from './attempt-limits';
import type { HeldLease } from './leases';
import type { RunWriter } from './run-writer';

export type Log = (message: string) => void;

/** One attempt of a run, as the worker goes through it. */
export interface Attempt {
  writer: RunWriter;
  /** The run as this worker last wrote it (or is about to). */
  run: RunRecord;
  log: Log;
  started: number;
  exportLease: HeldLease;
  limitLease: HeldLease | null;
  heartbeat?: NodeJS.Timeout;
  braze?: BrazeClient;
  /** The connection's hourly cap and Braze's reported limits, as this attempt meets them. */
  limits?: AttemptLimits;
  /** Queue the run again once the leases are free, after this many seconds. */
  requeueIn: number | null;
}

/** What an attempt works with once it may start. */
export interface Ready {
  exportRecord: ExportRecord;
  connection: ConnectionRecord;
  braze: BrazeClient;
  /** The connection's key, for Braze endpoints other than /users/track (verification). */
  apiKey: string;
  state: SyncStateStore;
  shouldStop: () => boolean;
  beforeCheckpoint: () => Promise<void>;
}

/** Records a run's outcome (RunsService.finish through the attempt's writer) and logs it. */
export type Finish = (
  writer: RunWriter,
  run: RunRecord,
  status: RunRecord['status'],
  errors: string[],
  exported: { snapshotId: string; definition: string } | null,
  log: Log,
) => Promise<void>;

/**
 * Throws StateTakenOver (`what`: what was going on) once the export's lease is lost or the run was
 * finished by someone else: the run is another worker's now, and this attempt writes nothing more.
 */
export function assertStillOurs(attempt: Attempt, what: string): void {
  if (attempt.writer.takenOver || attempt.exportLease.lost) throw new StateTakenOver(what);
}
