// A worker process killed mid-run (SIGKILL, not a thrown exception): the next worker resumes from
// the checkpoint, Braze ends equal to the snapshot, and the counts still add up.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimAzurite, type TestStorage } from '../helpers/azurite';
import { BrazeSandbox } from '../../scripts/braze-sandbox';
import { principalHeaders, testEnv } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { SANDBOX_KEY } from '../helpers/engine';
import { startHostProcess, type HostProcess } from '../helpers/host-process';

let azurite: TestStorage;
const sandbox = new BrazeSandbox();
const hosts: HostProcess[] = [];
const PROFILES = 3000;

/** The hosts' temp folder: what the killed worker left there must be gone once the run is resumed. */
const hostTemp = mkdtempSync(join(os.tmpdir(), 'resume-test-'));
const runFolders = () => readdirSync(hostTemp).filter((name) => name.startsWith('ci-braze-run-'));

const hostEnv = () => ({
  ...testEnv(azurite.connectionString),
  TMPDIR: hostTemp,
  SCHEDULED_REFRESH_SCHEDULE: '0 0 0 1 1 *',
  SYNC_BUCKET_TARGET_BYTES: '8192', // many small buckets, so there is a checkpoint to resume from
  LOCAL_QUEUE_VISIBILITY_SECONDS: '3', // a dead worker's message comes back quickly
  EARLY_CHECKPOINT_SECONDS: '0.5', // what is sent early is checkpointed often, as a long first run's would be
});

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

describe('resumable runs', () => {
  it('a run killed mid-way resumes from its checkpoint and ends with Braze equal to the snapshot', async () => {
    const source = await writeCiExport(BlobServiceClient.fromConnectionString(azurite.connectionString), [
      { segment: 'A', partitions: [rows(PROFILES)] },
      { segment: 'B', partitions: [rows(PROFILES / 2)] },
    ]);
    const first = await startHostProcess(hostEnv());
    hosts.push(first);
    const conn = await api(first, 'POST', 'connections', {
      displayName: 'Sandbox',
      restEndpoint: sandbox.url,
      apiKey: SANDBOX_KEY,
      consent: true,
    });
    const exp = await api(first, 'POST', 'exports', {
      name: 'Resumable',
      connectionId: conn.body.id,
      brazeSegmentApiId: 'seg-api-id',
      source,
      segments: ['A', 'B'],
      matching: MATCHING,
    });
    sandbox.setFaults({ slowMs: 80 }); // slow enough to kill it half-way
    const started = await api(first, 'POST', `exports/${exp.body.id}/run`);
    expect(started.status).toBe(202);

    let progress: any;
    for (let i = 0; i < 300; i++) {
      progress = (await api(first, 'GET', `runs/${started.body.runId}`)).body;
      if (progress.progress && progress.progress.bucketsDone >= 3) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(progress.progress.bucketsDone).toBeLessThan(progress.progress.bucketsTotal);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    expect(runFolders()).toHaveLength(1); // the killed worker could not remove its spill
    const deliveredBeforeKill = sandbox.profiles.size;
    expect(deliveredBeforeKill).toBeGreaterThan(0);
    expect(deliveredBeforeKill).toBeLessThan(PROFILES);

    sandbox.setFaults({ slowMs: 0 });
    const second = await startHostProcess(hostEnv());
    hosts.push(second);
    let run: any = await runEnded(second, started.body.runId);
    expect(run.status).toBe('succeeded');
    expect(run.attempts).toBeGreaterThanOrEqual(2);
    expect(runFolders()).toEqual([]); // the resumed attempt removed it
    const c = run.counts;
    expect(c.profiles).toBe(PROFILES);
    expect(c.profiles).toBe(c.sent + c.unchanged + c.rejected + c.failed);
    expect(c.rowsRead).toBe(PROFILES * 1.5);

    // Braze holds exactly the snapshot: every profile, with the right membership.
    expect(sandbox.profiles.size).toBe(PROFILES);
    // Killed in the bucket phase, the resumed attempt sends again at most the buckets that were
    // under way (two at a time, ~8 KB of CSV, ~220 profiles each): never what was checkpointed.
    const resent = sandbox.stats.objectsProcessed - PROFILES;
    expect(resent).toBeLessThanOrEqual(Math.max(0.05 * PROFILES, 2 * 250));
    for (let i = 1; i <= PROFILES; i++) {
      const key = i % 2 ? `external_id:u${i}` : `alias:ci_customer_id:c${i}`;
      const p = sandbox.profiles.get(key);
      expect(p?.attributes['seg-api-id'], key).toEqual(i <= PROFILES / 2 ? ['A', 'B'] : ['A']);
      expect(p?.attributes.email).toBe(`p${i}@example.com`);
    }
    // The next run finds nothing to send: the resumed buckets recorded their state.
    const again = await api(second, 'POST', `exports/${exp.body.id}/run`);
    for (let i = 0; i < 120; i++) {
      run = (await api(second, 'GET', `runs/${again.body.runId}`)).body;
      if (!['queued', 'running'].includes(run.status)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(run.counts).toMatchObject({ sent: 0, unchanged: PROFILES });
  }, 90_000);

  it('killed while still sending during reading (first run), the resumed attempt resends at most one checkpoint interval', async () => {
    const profiles = 20_000;
    const source = await writeCiExport(BlobServiceClient.fromConnectionString(azurite.connectionString), [
      { segment: 'A', partitions: [rows(profiles)] },
    ]);
    // A checkpoint every 0.5 s of sending; few buckets, so each checkpoint is a few small blobs.
    const env = { ...hostEnv(), EARLY_CHECKPOINT_SECONDS: '0.5', SYNC_BUCKET_TARGET_BYTES: '65536' };
    const first = await startHostProcess(env);
    hosts.push(first);
    // 100 requests a second: 7,500 profiles a second, 3,750 per checkpoint interval.
    const conn = await api(first, 'POST', 'connections', {
      displayName: 'Sandbox early',
      restEndpoint: sandbox.url,
      apiKey: SANDBOX_KEY,
      consent: true,
      requestBudget: 300,
    });
    const exp = await api(first, 'POST', 'exports', {
      name: 'Killed early',
      connectionId: conn.body.id,
      brazeSegmentApiId: 'seg-api-id',
      source,
      segments: ['A'],
      matching: MATCHING,
    });
    sandbox.reset();
    sandbox.setFaults({ slowMs: 40 });
    const started = await api(first, 'POST', `exports/${exp.body.id}/run`);
    for (let i = 0; i < 400 && sandbox.stats.objectsProcessed < 12_000; i++) await new Promise((r) => setTimeout(r, 10));
    const progress = (await api(first, 'GET', `runs/${started.body.runId}`)).body;
    expect(progress.progress?.bucketsDone ?? 0).toBe(0); // no bucket checkpointed yet: still the first phase
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const sentBeforeKill = sandbox.stats.objectsProcessed;
    expect(sentBeforeKill).toBeGreaterThanOrEqual(12_000);
    expect(sentBeforeKill).toBeLessThan(profiles);

    sandbox.setFaults({ slowMs: 0 });
    const second = await startHostProcess(env);
    hosts.push(second);
    const run = await runEnded(second, started.body.runId);
    expect(run.status).toBe('succeeded');
    expect(sandbox.profiles.size).toBe(profiles);
    const objectsResent = sandbox.stats.objectsProcessed - profiles;
    // At most one interval (3,750 profiles) plus what was in flight when it was killed — not the 12,000+ sent before.
    expect(objectsResent).toBeLessThanOrEqual(3750 + 1500);
    // Checkpoints are folded into the buckets' state: none is left.
    const left: string[] = [];
    for await (const b of BlobServiceClient.fromConnectionString(azurite.connectionString)
      .getContainerClient('sync-state')
      .listBlobsFlat({ prefix: `${exp.body.id}/` }))
      if (b.name.includes('.early-')) left.push(b.name);
    expect(left).toEqual([]);
  }, 90_000);
});
