// Composition root: settings → clients → repos → services, built once per process.
import { loadConfig, type AppConfig } from './config';
import { ConnectionsService } from './connections/service';
import { ExportsService } from './exports/service';
import { KeyVaultSecretStore, LocalEncryptedSecretStore, type SecretStore } from './secrets';
import { ConnectionsRepo } from './store/connections';
import { createStorageClients, ensureStorage, TABLES, type StorageClients } from './store/clients';
import { ExportsRepo } from './store/exports';

export interface Services {
  config: AppConfig;
  storage: StorageClients;
  secrets: SecretStore;
  connections: ConnectionsService;
  exports: ExportsService;
  /** Resolves once tables, containers and the queue exist. */
  ready: Promise<void>;
}

export function createServices(config: AppConfig): Services {
  const storage = createStorageClients(config);
  const secrets: SecretStore =
    'keyVaultUri' in config.secrets ? new KeyVaultSecretStore(config.secrets.keyVaultUri) : new LocalEncryptedSecretStore(config.secrets.localKey);
  const exportsRepo = new ExportsRepo(storage.table(TABLES.exports));
  const connections = new ConnectionsService(new ConnectionsRepo(storage.table(TABLES.connections)), exportsRepo, secrets, config.extraBrazeHosts);
  const exports = new ExportsService(exportsRepo, connections);
  const ready = ensureStorage(storage);
  ready.catch(() => undefined); // surfaced by the first request that awaits it
  return { config, storage, secrets, connections, exports, ready };
}

let current: Services | undefined;

/** The process-wide services, from app settings (parsed on first use; functions/index.ts forces that at start-up). */
export function services(): Services {
  return (current ??= createServices(loadConfig()));
}

/** Tests: rebuild from the current environment. */
export function resetServices(): void {
  current = undefined;
}
