// What lets the engine thread download a CI partition itself, without the Azure SDK
// (engine/read/partition-download.ts): the blob's URL and the headers its requests need, made
// from the client's own credential. An account reached by key: a read-only SAS for that one blob,
// valid for an hour (a partition takes seconds; a continuation makes new ones). By identity: a
// bearer token (the credential caches it) and a service version that takes one. Anonymous (a SAS
// already in the connection string): the URL as it is. Grants cross to the thread in a message
// and are never logged.
import { BlobSASPermissions, StorageSharedKeyCredential, type BlobClient } from '@azure/storage-blob';

export interface DownloadGrant {
  url: string;
  headers: Record<string, string>;
}

const SAS_MINUTES = 60;
const STORAGE_SCOPE = 'https://storage.azure.com/.default';
/** A Blob service version that takes bearer tokens (any from 2017-11-09 on). */
const SERVICE_VERSION = '2021-08-06';

export async function downloadGrant(blob: BlobClient): Promise<DownloadGrant> {
  const credential = blob.credential;
  if (credential instanceof StorageSharedKeyCredential) {
    const expiresOn = new Date(Date.now() + SAS_MINUTES * 60_000);
    return { url: await blob.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn }), headers: {} };
  }
  if ('getToken' in credential) {
    // As the SDK does, a token goes over TLS only.
    if (!blob.url.startsWith('https:'))
      throw new Error('The CI storage account must be reached over https with a managed identity');
    const token = await credential.getToken(STORAGE_SCOPE);
    if (!token) throw new Error('No token for Azure Storage from the managed identity');
    return { url: blob.url, headers: { authorization: `Bearer ${token.token}`, 'x-ms-version': SERVICE_VERSION } };
  }
  return { url: blob.url, headers: {} };
}
