// Composition root: settings → clients → repos → services, built once per process.
import { loadConfig, type AppConfig } from './config';
import { ConnectionsService } from './connections/service';
import { ExportsService } from './exports/service';
import { KeyVaultSecretStore, LocalEncryptedSecretStore, type SecretStore } from './secrets';
import { ConnectionsRepo } from './store/connections';
import { createStorageClients, credentialFor, ensureStorage, TABLES, type StorageClients } from './store/clients';
import { ExportsRepo } from './store/exports';
import { ExportStateRepo } from './store/export-state';
import { RunsRepo } from './store/runs';
import { RunsService } from './runs/service';
import { RunWorker, type WorkerDeps } from './runs/worker';
import { ScheduledRefresh } from './runs/scheduler';
import { SyncStateStore } from './engine';
import { CONTAINERS } from './store/clients';
import { ExportPreview } from './preview/preview-export';
import { BlobServiceClient } from '@azure/storage-blob';
import { VerifyService } from './verify/service';
import { forgetUrl } from './verify/saved-url';

export interface Services {
  config: AppConfig;
  storage: StorageClients;
  secrets: SecretStore;
  connections: ConnectionsService;
  exports: ExportsService;
  runs: RunsService;
  worker: RunWorker;
  scheduler: ScheduledRefresh;
  preview: ExportPreview;
  verify: VerifyService;
  /**
   * Resolves once tables, containers and the queue exist. A failed setup is not kept: the next
   * call tries again (minutes after a deployment, the identity's role grants may not be effective yet).
   */
  readonly ready: Promise<void>;
}

/** What tests may tune beyond the app settings. */
export interface ServiceOverrides {
  /** The Braze client's retry pacing (tests: a fast backoff, so a fault that is retried costs milliseconds). */
  brazeOptions?: WorkerDeps['brazeOptions'];
  /** Verification runs' polling of Braze's export (tests: milliseconds, not seconds). */
  verifyTiming?: WorkerDeps['verifyTiming'];
  /** Running attempts' sign of life, which is also how soon they see a cancel (tests: a second, not five). */
  heartbeatMs?: WorkerDeps['heartbeatMs'];
}

/** Braze keys: in Key Vault in Azure; encrypted in Table Storage with a key from settings locally. */
const secretStoreOf = (config: AppConfig): SecretStore =>
  'keyVaultUri' in config.secrets
    ? new KeyVaultSecretStore(
        config.secrets.keyVaultUri,
        credentialFor('clientId' in config.appStorage ? config.appStorage.clientId : undefined),
      )
    : new LocalEncryptedSecretStore(config.secrets.localKey);

/** Creates the app's tables, containers and queues once; a failure is surfaced and tried again on the next call. */
function readyOnce(storage: StorageClients): () => Promise<void> {
  let setup: Promise<void> | null = null;
  return () => {
    if (!setup) {
      const attempt = ensureStorage(storage);
      setup = attempt;
      attempt.catch(() => {
        if (setup === attempt) setup = null;
      });
    }
    return setup;
  };
}

export function createServices(config: AppConfig, overrides: ServiceOverrides = {}): Services {
  const storage = createStorageClients(config);
  const secrets = secretStoreOf(config);
  const exportsRepo = new ExportsRepo(storage.table(TABLES.exports));
  const stateRepo = new ExportStateRepo(storage.table(TABLES.exports));
  const runsRepo = new RunsRepo(storage.table(TABLES.runs));
  const connectionsRepo = new ConnectionsRepo(storage.table(TABLES.connections));
  const connections = new ConnectionsService(connectionsRepo, exportsRepo, secrets, config.extraBrazeHosts, config.checkKeys);
  const syncState = (exportId: string) => new SyncStateStore(storage.appBlobs.getContainerClient(CONTAINERS.state), exportId);
  const reports = storage.appBlobs.getContainerClient(CONTAINERS.reports);
  const runs = new RunsService(runsRepo, exportsRepo, stateRepo, connections, storage.runQueue, (run) =>
    run.kind === 'verify' ? forgetUrl(reports, run.id) : Promise.resolve(),
  );
  const exports = new ExportsService(exportsRepo, connections, {
    statusOf: async (id) => {
      const state = (await stateRepo.get(id))?.value;
      return { lastRun: state?.lastRun ?? null, lastCheck: state?.lastCheck ?? null, lastVerify: state?.lastVerify ?? null };
    },
    hasSyncState: async (id) => (await syncState(id).readManifest()) !== null,
    start: (record, by, fullSync, options) => runs.start(record, 'manual', by, fullSync, options),
    finishAtOnce: async (run, note) => {
      await runs.finish({ ...run, warnings: [note] }, 'succeeded', [], null);
    },
    runStatusOf: (runId) =>
      runsRepo.get(runId).then(
        (r) => r.value.status,
        () => null,
      ),
    forget: async (id) => {
      await stateRepo.delete(id);
      await syncState(id).clear();
    },
  });
  const worker = new RunWorker({
    runs: runsRepo,
    exports: exportsRepo,
    state: stateRepo,
    connections: connectionsRepo,
    secrets,
    appBlobs: storage.appBlobs,
    ciBlobs: storage.ciBlobs,
    runsService: runs,
    exportsService: exports,
    timeBudgetMs: config.workerTimeBudgetMs,
    earlyCheckpointMs: config.earlyCheckpointMs,
    bucketTargetBytes: config.bucketTargetBytes,
    brazeOptions: overrides.brazeOptions,
    heartbeatMs: overrides.heartbeatMs,
    blobsAt: (url) =>
      new BlobServiceClient(url, credentialFor('clientId' in config.appStorage ? config.appStorage.clientId : undefined)),
    verifyTiming: { ...(overrides.verifyTiming ?? config.verifyTiming), extraBrazeHosts: config.extraBrazeHosts },
  });
  const scheduler = new ScheduledRefresh(exportsRepo, stateRepo, runsRepo, runs, connectionsRepo, storage.ciBlobs, exports);
  const preview = new ExportPreview({
    exports: exportsRepo,
    connectionRecords: connectionsRepo,
    connections,
    ciBlobs: storage.ciBlobs,
    appBlobs: storage.appBlobs,
    bucketTargetBytes: config.bucketTargetBytes,
  });
  const verify = new VerifyService(runs, runsRepo, exportsRepo, stateRepo, connections, connectionsRepo, storage);
  const ready = readyOnce(storage);
  return {
    config,
    storage,
    secrets,
    connections,
    exports,
    runs,
    worker,
    scheduler,
    preview,
    verify,
    get ready() {
      return ready();
    },
  };
}

let current: Services | undefined;
let overrides: ServiceOverrides = {};

/** The process-wide services, from app settings (parsed on first use; functions/index.ts forces that at start-up). */
export function services(): Services {
  return (current ??= createServices(loadConfig(), overrides));
}

/** Tests: rebuild from the current environment (and the overrides given). */
export function resetServices(next: ServiceOverrides = {}): void {
  current = undefined;
  overrides = next;
}
