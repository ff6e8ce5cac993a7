// The snapshot a run exports, pinned by its first attempt so every later attempt reads the same
// one, and where a run's files (that pin, the rejected-rows report) live.
import type { BlobServiceClient } from '@azure/storage-blob';
import { locateSnapshot, type Snapshot } from '../snapshot/locate';
import { downloadWhole } from '../store/blob-bytes';
import { CONTAINERS } from '../store/clients';
import { splitRunId, type RunRecord } from '../store/runs';
import { statusOf } from '../store/table-errors';

/** Where a run's files live: the rejected-rows report and the snapshot it is pinned to. */
export const runFolder = (runId: string) => {
  const ids = splitRunId(runId)!;
  return `${ids.exportId}/${ids.rowKey}`;
};

/**
 * The first attempt locates the snapshot and pins it; later attempts read the same one. A held run
 * sent nothing: once approved it looks again, so a newer snapshot is weighed afresh. `pinned`: the
 * pin's write, left under way for the caller to await before anything is weighed or sent.
 */
export async function pinnedSnapshot(
  deps: { appBlobs: BlobServiceClient; ciBlobs: BlobServiceClient },
  run: RunRecord,
  source: { container: string; folder: string },
  segments: string[],
): Promise<{ snapshot: Snapshot; pinned: Promise<void> }> {
  const blob = deps.appBlobs.getContainerClient(CONTAINERS.reports).getBlockBlobClient(`${runFolder(run.id)}/snapshot.json`);
  const heldAndUnsent = !!run.held && !run.buckets;
  if (run.attempts > 1 && !heldAndUnsent) {
    try {
      return { snapshot: JSON.parse((await downloadWhole(blob)).bytes.toString('utf8')) as Snapshot, pinned: Promise.resolve() };
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
    }
  }
  const snapshot = await locateSnapshot(deps.ciBlobs, source, segments);
  const text = JSON.stringify(snapshot);
  const pinned = blob.upload(text, Buffer.byteLength(text), { blobHTTPHeaders: { blobContentType: 'application/json' } });
  return { snapshot, pinned: pinned.then(() => undefined) };
}
