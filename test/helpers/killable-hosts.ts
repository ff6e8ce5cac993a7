// Hosts a test can kill: the compiled app under the local host in child processes, on the file's
// Azurite storage and a Braze sandbox, with settings that make a killed worker's run come back
// quickly and leave checkpoints to resume from.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { BlobServiceClient } from '@azure/storage-blob';
import { BrazeSandbox } from '../../scripts/braze-sandbox';
import { CONTAINERS } from '../../shared/store/clients';
import { principalHeaders, testEnv } from './app';
import { claimAzurite, type TestStorage } from './azurite';
import { startHostProcess, type HostProcess } from './host-process';

export function useKillableHosts() {
  let azurite: TestStorage;
  const sandbox = new BrazeSandbox();
  const hosts: HostProcess[] = [];
  /** The hosts' temp folder: what a killed worker left there must be gone once the run is resumed. */
  const hostTemp = mkdtempSync(join(os.tmpdir(), 'resume-test-'));

  beforeAll(async () => {
    azurite = await claimAzurite();
    await sandbox.start();
  });
  afterAll(async () => {
    for (const h of hosts) await h.stop();
    await sandbox.stop();
    await azurite?.stop();
    rmSync(hostTemp, { recursive: true, force: true });
  });

  const hostEnv = () => ({
    ...testEnv(azurite.connectionString),
    TMPDIR: hostTemp,
    SCHEDULED_REFRESH_SCHEDULE: '0 0 0 1 1 *',
    SYNC_BUCKET_TARGET_BYTES: '8192', // many small buckets, so there is a checkpoint to resume from
    LOCAL_QUEUE_VISIBILITY_SECONDS: '3', // a dead worker's message comes back quickly
    EARLY_CHECKPOINT_SECONDS: '0.5', // what is sent early is checkpointed often, as a long first run's would be
  });

  async function startHost(env: Record<string, string> = hostEnv()): Promise<HostProcess> {
    const host = await startHostProcess(env);
    hosts.push(host);
    return host;
  }

  async function api(host: HostProcess, method: string, path: string, body?: unknown) {
    const res = await fetch(`${host.url}/api/${path}`, {
      method,
      headers: { ...principalHeaders('Admin'), ...(method !== 'GET' ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  }

  /** The run once it has ended (a minute at most), as the host's API shows it. */
  async function runEnded(host: HostProcess, runId: string): Promise<any> {
    let run: any;
    for (let i = 0; i < 240; i++) {
      run = (await api(host, 'GET', `runs/${runId}`)).body;
      if (!['queued', 'running'].includes(run.status)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    return run;
  }

  /**
   * What a killed worker's leases do by themselves within 15 s (Azure's shortest lease): they are
   * broken now, for a test whose subject is what the resumed attempt sends, not the wait before it
   * (engine.resume.test.ts waits it out).
   */
  async function expireLeasesOfKilledWorker(): Promise<void> {
    const leases = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINERS.leases);
    for await (const blob of leases.listBlobsFlat())
      if (blob.properties.leaseState === 'leased') await leases.getBlobClient(blob.name).getBlobLeaseClient().breakLease(0);
  }

  return {
    azurite: () => azurite,
    expireLeasesOfKilledWorker,
    sandbox,
    hostEnv,
    startHost,
    api,
    runEnded,
    runFolders: () => readdirSync(hostTemp).filter((name) => name.startsWith('ci-braze-run-')),
  };
}
