// The engine's front door: what the rest of the app (runs, preview, services) may use. Everything
// else under shared/engine/ is the engine's own (dependency-cruiser holds this; see docs/architecture.md).
export { runExport, RunAborted, type EngineInput, type EngineResult } from './run/run-export';
export { withdrawAll, type WithdrawCounts } from './run/withdraw';
export type { RunCounts, RunProgress } from './run/progress';
export { MAX_REPORT_ROWS } from './read/partition-books';
export { emptyBucketCounts, type BucketCounts, type RejectedRow } from './thread/protocol';
export { definitionFingerprint } from './state/open-sync-state';
export { membershipNamesOf } from './profile/object-writer';
export { SyncStateStore, type Manifest } from './state/sync-state';
export type { CheckpointRange } from './state/early-checkpoint-blobs';
export type { BucketHeader } from './state/state-line';
export { RunStopped, StateTakenOver } from './control/stop';
// Verification (shared/verify/) reads the state, and maps snapshot rows and writes objects the way a run does, to compare with Braze.
export { BrazeObjectWriter } from './profile/object-writer';
export { identityOf, mergePartials, type MergedProfile } from './profile/merge';
export { RowMapper, type PartialProfile } from './profile/row-mapper';
export { bytewiseFingerprint, ENCODED_64_CHARS, fingerprintBytes, fingerprintLike } from './hash/fingerprint';
export { bucketOf, fnv1a32 } from './hash/key-hash';
export { parseBucketState } from './state/state-entries';
export { stateLine, stateLinesBytes, type StateEntry } from './state/state-line';
export { BucketFiles } from './spill/bucket-files';
export { createRunTempDir } from './spill/run-temp-dir';
export type { Weighing, WeighedRun } from './run/weighing';
