// A CI partition downloaded through the app's own GET (store/blob-download.ts). Where one engine
// thread reads (see run/engine-threads.ts), that thread downloads each partition itself and the
// partition never crosses the main thread: downloaded there, each socket chunk was copied into
// shared memory for the thread, and the socket's buffers kept the main thread's garbage collector
// marking its whole heap every ~200 ms while a run read (19–21 full collections in a wide first
// run on one core, 7 without). The main thread downloads the segment sent early, and for two
// reading threads, the same way. The Azure SDK is not loaded on the engine thread: it takes
// ~230 ms of CPU to load, per thread.
import type { BlobGrant } from '../../store/blob-grant';
import { downloadBlob, type BlobRequest, type DownloadOptions } from '../../store/blob-download';
import { PartitionAborted } from './column-check';

/** What the run says when a partition of the snapshot it is pinned to was deleted. */
export const partitionGone = (blobName: string) =>
  new PartitionAborted(
    `Partition ${blobName} of the snapshot this run is pinned to is gone (deleted by CI's retention?); run the export again to read the newest snapshot`,
  );

const partitionChanged = (blobName: string) =>
  new PartitionAborted(
    `Partition ${blobName} of the snapshot this run is pinned to changed while it was read; run the export again to read the newest snapshot`,
  );

/** A partition's download (downloadBlob): its errors name it, and say what to do when it is gone or changed. */
export const downloadPartition = (
  grant: BlobGrant,
  blobName: string,
  push: (bytes: Buffer) => void | Promise<void>,
  options: DownloadOptions = {},
  ahead: BlobRequest | null = null,
): Promise<{ etag: string | null }> =>
  downloadBlob(
    grant,
    {
      failed: (why) => new Error(`Downloading partition ${blobName} failed: ${why}`),
      gone: () => partitionGone(blobName),
      changed: () => partitionChanged(blobName),
    },
    push,
    options,
    ahead,
  );
