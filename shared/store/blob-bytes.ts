// A whole blob in one request. The SDK's downloadToBuffer() without a length asks for the blob's
// properties first (a HEAD, then the GET), and a run reads several small blobs (model.json, the
// sync state's manifest, a continuation's pinned snapshot) before it reads a row: against Azure
// Storage each of those round trips is milliseconds the run waits for.
import type { BlobClient, BlobDownloadOptions } from '@azure/storage-blob';

export interface WholeBlob {
  bytes: Buffer;
  etag: string | undefined;
  lastModified: Date | undefined;
}

/**
 * The blob's bytes, its ETag and when it was written, from one GET. Throws the SDK's error as it
 * comes (a 404 included); a blob longer than `maxBytes` is not read: `tooLarge()` is thrown.
 */
export async function downloadWhole(
  blob: BlobClient,
  options: BlobDownloadOptions = {},
  limit: { maxBytes: number; tooLarge: () => Error } | null = null,
): Promise<WholeBlob> {
  const response = await blob.download(0, undefined, options);
  const body = response.readableStreamBody as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
  if (!body) throw new Error('the blob came without a body');
  if (limit && (response.contentLength ?? 0) > limit.maxBytes) {
    body.destroy?.();
    throw limit.tooLarge();
  }
  // The SDK resumes a body that breaks off with a ranged GET on the same version (If-Match), so the bytes are one version's.
  return { bytes: await bodyBytes(body, response.contentLength), etag: response.etag, lastModified: response.lastModified };
}

/** A body's bytes, in one buffer of its Content-Length when it has one: a body longer or shorter than that is an error. */
async function bodyBytes(body: NodeJS.ReadableStream, length: number | undefined): Promise<Buffer> {
  if (length === undefined) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  const bytes = Buffer.allocUnsafe(length);
  let at = 0;
  for await (const chunk of body) {
    const piece = chunk as Buffer;
    if (at + piece.length > length) throw new Error('a blob came longer than its Content-Length');
    bytes.set(piece, at);
    at += piece.length;
  }
  if (at !== length) throw new Error('a blob came shorter than its Content-Length');
  return bytes;
}
