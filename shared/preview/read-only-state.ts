// The export's sync state as a preview sees it: read as a run reads it, never written (no
// manifest, bucket or checkpoint write, no clean-up), so a preview leaves no trace.
import { SyncStateStore, type BucketHeader, type CheckpointRange, type Manifest } from '../engine';

export class ReadOnlySyncState extends SyncStateStore {
  override async writeManifest(_manifest: Manifest): Promise<void> {}
  override async writeEarlyCheckpoint(
    _checkpoint: number,
    _header: BucketHeader,
    _ranges: readonly CheckpointRange[],
  ): Promise<void> {}
  override async writeBucket(
    _bucket: number,
    _header: BucketHeader,
    _lines: Uint8Array[],
    _readEtag: string | null,
  ): Promise<void> {}
  override async earlyCheckpointNames(): Promise<string[]> {
    return []; // nothing is removed, so nothing needs listing
  }
  override async removeEarlyCheckpoints(_listed?: readonly string[]): Promise<void> {}
  override async clear(): Promise<void> {
    throw new Error('a preview never clears sync state');
  }
}
