// Opening an export's sync state for a run: how many buckets it has (kept for the export's life, so
// profiles stay in their buckets), and whether there is any (then Braze holds some of the export,
// and every profile's object is written knowing what it holds).
import crypto from 'node:crypto';
import type { ExportDefinition } from '../../exports/schema';
import type { Manifest, SyncStateStore } from './sync-state';

/** A fingerprint of a value's JSON (the export settings): 96 bits of SHA-1, in 16 characters. */
function fingerprint(value: unknown): string {
  return crypto.createHash('sha1').update(JSON.stringify(value)).digest('base64url').slice(0, 16);
}

/** A bucket per ~4 MB of CSV keeps each bucket's merge small, whatever the snapshot's size. */
function chooseBucketCount(snapshotBytes: number, targetBytes = 4 * 1024 * 1024): number {
  let n = 1;
  while (n < 4096 && n * targetBytes < snapshotBytes) n *= 2;
  return n;
}

/**
 * Settings whose change makes earlier fingerprints meaningless for this export: what is sent, and
 * where (another connection or endpoint may be another Braze workspace that has none of it).
 */
export const definitionFingerprint = (d: ExportDefinition, destination: string) =>
  fingerprint({ m: d.matching, s: d.segments, b: d.membership, id: d.brazeSegmentApiId, c: d.connectionId, to: destination });

interface OpenedState {
  definitionFp: string;
  bucketCount: number;
  /** The export has sync state at all (under any settings): what Braze holds must be known, to clear and withdraw. */
  hadState: boolean;
}

export async function openSyncState(
  state: SyncStateStore,
  def: ExportDefinition,
  destination: string,
  snapshotBytes: number,
  /** Buckets of an earlier attempt of this run, which a continuation must keep. */
  resumedBucketCount: number | undefined,
  bucketTargetBytes: number | undefined,
  /** The manifest as the caller read it already, under this attempt's lease (else read here). */
  manifestRead?: Promise<Manifest | null>,
): Promise<OpenedState> {
  const definitionFp = definitionFingerprint(def, destination);
  const manifest = await (manifestRead ?? state.readManifest());
  const bucketCount = resumedBucketCount ?? manifest?.bucketCount ?? chooseBucketCount(snapshotBytes, bucketTargetBytes);
  const stateMatches = manifest?.definition === definitionFp;
  if (!manifest || manifest.bucketCount !== bucketCount || !stateMatches)
    await state.writeManifest({ version: 1, bucketCount, definition: definitionFp });
  return { definitionFp, bucketCount, hadState: manifest !== null };
}
