// What lets the app download a blob through its own GET, without the Azure SDK
// (blob-download.ts): a CI partition (on the engine thread, or the main thread for it) or a bucket
// of the sync state. The blob's URL and the headers its requests need, made from the client's own
// credential. An account reached by key: a read-only SAS for that one blob, valid for 15 minutes
// (a partition takes seconds; every blob gets a grant of its own). By identity: a bearer token,
// kept until 5 minutes before it expires, as the SDK keeps it. Anonymous (a SAS already in the
// connection string): the URL as it is. Every grant names the service version. Grants cross to the
// thread in a message and are never logged.
import type { AccessToken, TokenCredential } from '@azure/identity';
import { BlobSASPermissions, SASProtocol, StorageSharedKeyCredential, type BlobClient } from '@azure/storage-blob';

export interface BlobGrant {
  url: string;
  headers: Record<string, string>;
}

const SAS_MINUTES = 15;
const STORAGE_SCOPE = 'https://storage.azure.com/.default';
/** A Blob service version that takes bearer tokens (any from 2017-11-09 on) and honours ranges. */
const SERVICE_VERSION = '2021-08-06';
/** A token is asked for again this long before it expires: a partition's download must not outlive it. */
const TOKEN_MARGIN_MS = 5 * 60_000;

const tokens = new WeakMap<TokenCredential, AccessToken>();

/**
 * Whether the environment names a proxy: the SDK takes it (with NO_PROXY's exceptions), node:http
 * does not, so partitions and the sync state are then downloaded by the main thread through the SDK.
 */
export const proxyInEnvironment = (): boolean =>
  ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((name) => Boolean(process.env[name]));

export async function downloadGrant(blob: BlobClient): Promise<BlobGrant> {
  const credential = blob.credential;
  const version = { 'x-ms-version': SERVICE_VERSION };
  const https = new URL(blob.url).protocol === 'https:';
  if (credential instanceof StorageSharedKeyCredential) {
    const url = await blob.generateSasUrl({
      permissions: BlobSASPermissions.parse('r'),
      expiresOn: new Date(Date.now() + SAS_MINUTES * 60_000),
      ...(https ? { protocol: SASProtocol.Https } : {}),
    });
    return { url, headers: version };
  }
  if ('getToken' in credential) {
    // As the SDK does, a token goes over TLS only.
    if (!https) throw new Error('A storage account must be reached over https with a managed identity');
    const token = await tokenFor(credential);
    return { url: blob.url, headers: { ...version, authorization: `Bearer ${token}` } };
  }
  return { url: blob.url, headers: version };
}

async function tokenFor(credential: TokenCredential): Promise<string> {
  const kept = tokens.get(credential);
  if (kept && kept.expiresOnTimestamp - Date.now() > TOKEN_MARGIN_MS) return kept.token;
  const token = await credential.getToken(STORAGE_SCOPE);
  if (!token) throw new Error('No token for Azure Storage from the managed identity');
  tokens.set(credential, token);
  return token.token;
}
