// Azure Storage clients from settings: a connection string (Azurite, keys) or the managed identity.
import { TableClient } from '@azure/data-tables';
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueClient } from '@azure/storage-queue';
import type { AppConfig } from '../config';

export const TABLES = { connections: 'connections', exports: 'exports', runs: 'runs' } as const;
export const CONTAINERS = { state: 'sync-state', reports: 'run-reports', leases: 'run-leases' } as const;
export const RUN_QUEUE = 'export-runs';

export interface StorageClients {
  table(name: string): TableClient;
  appBlobs: BlobServiceClient;
  ciBlobs: BlobServiceClient;
  runQueue: QueueClient;
}

/** The app's managed identity (user-assigned when a client ID is set), or the developer's credential. */
export function credentialFor(clientId?: string): TokenCredential {
  return clientId ? new ManagedIdentityCredential({ clientId }) : new DefaultAzureCredential();
}

export function createStorageClients(config: AppConfig): StorageClients {
  const app = config.appStorage;
  const insecure = { allowInsecureConnection: true }; // Azurite speaks http on loopback
  let table: (name: string) => TableClient;
  let appBlobs: BlobServiceClient;
  let runQueue: QueueClient;
  if ('connectionString' in app) {
    table = (name) => TableClient.fromConnectionString(app.connectionString, name, insecure);
    appBlobs = BlobServiceClient.fromConnectionString(app.connectionString);
    runQueue = new QueueClient(app.connectionString, RUN_QUEUE);
  } else {
    const cred = credentialFor(app.clientId);
    // The endpoints the template gives (the cloud's own suffix); an account name alone means the public cloud.
    const uri = (service: 'blob' | 'queue' | 'table') =>
      'blobServiceUri' in app
        ? app[`${service}ServiceUri`].replace(/\/+$/, '')
        : `https://${app.accountName}.${service}.core.windows.net`;
    table = (name) => new TableClient(uri('table'), name, cred);
    appBlobs = new BlobServiceClient(uri('blob'), cred);
    runQueue = new QueueClient(`${uri('queue')}/${RUN_QUEUE}`, cred);
  }
  const ci = config.ciStorage;
  const ciBlobs =
    'connectionString' in ci
      ? BlobServiceClient.fromConnectionString(ci.connectionString)
      : new BlobServiceClient(ci.blobUrl, credentialFor('clientId' in app ? app.clientId : undefined));
  const tables = new Map<string, TableClient>();
  return {
    table: (name) => {
      let t = tables.get(name);
      if (!t) tables.set(name, (t = table(name)));
      return t;
    },
    appBlobs,
    ciBlobs,
    runQueue,
  };
}

/** Creates the tables, containers and queue the app uses (idempotent; first start and tests). */
export async function ensureStorage(clients: StorageClients): Promise<void> {
  await Promise.all([
    ...Object.values(TABLES).map((t) => clients.table(t).createTable()),
    ...Object.values(CONTAINERS).map((c) => clients.appBlobs.getContainerClient(c).createIfNotExists()),
    clients.runQueue.createIfNotExists(),
  ]);
}
