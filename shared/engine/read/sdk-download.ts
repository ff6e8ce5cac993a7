// A partition's bytes through the Azure SDK, on the main thread: only where the environment names a
// proxy (`HTTPS_PROXY`, `HTTP_PROXY`), which the SDK takes and the app's own GET (store/http-get.ts) does not.
import type { Readable } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import { statusOf } from '../../store/table-errors';
import { partitionGone } from './partition-download';

/** The partition's chunks as the SDK's stream gives them; a partition gone fails as gone. */
export async function sdkChunks(container: ContainerClient, blobName: string): Promise<AsyncIterable<Buffer>> {
  const download = await container
    .getBlobClient(blobName)
    .download()
    .catch((e: unknown) => {
      // The run is pinned to this snapshot: a partition gone since (CI's retention) will not come back.
      if (statusOf(e) === 404) throw partitionGone(blobName);
      throw e;
    });
  return download.readableStreamBody as Readable;
}
