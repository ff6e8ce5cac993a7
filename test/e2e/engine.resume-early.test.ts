// A worker process killed (SIGKILL) while a first run still sends during reading: the resumed
// attempt resends at most one checkpoint interval, and no checkpoint is left behind.
import { BlobServiceClient } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { SANDBOX_KEY } from '../helpers/engine';
import { useKillableHosts } from '../helpers/killable-hosts';

const { azurite, sandbox, hostEnv, startHost, api, runEnded, expireLeasesOfKilledWorker } = useKillableHosts();

describe('resumable first runs', () => {
  it('killed while still sending during reading (first run), the resumed attempt resends at most one checkpoint interval', async () => {
    const profiles = 20_000;
    const source = await writeCiExport(BlobServiceClient.fromConnectionString(azurite().connectionString), [
      { segment: 'A', partitions: [rows(profiles)] },
    ]);
    // A checkpoint every 0.5 s of sending; few buckets, so each checkpoint is a few small blobs.
    const env = { ...hostEnv(), EARLY_CHECKPOINT_SECONDS: '0.5', SYNC_BUCKET_TARGET_BYTES: '65536' };
    const first = await startHost(env);
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

    await expireLeasesOfKilledWorker();
    sandbox.setFaults({ slowMs: 0 });
    const second = await startHost(env);
    const run = await runEnded(second, started.body.runId);
    expect(run.status).toBe('succeeded');
    expect(sandbox.profiles.size).toBe(profiles);
    const objectsResent = sandbox.stats.objectsProcessed - profiles;
    // At most one interval (3,750 profiles) plus what was in flight or being checkpointed when it was
    // killed (0.4 s of sending: a checkpoint covers what was sent when it began, and its blobs take a
    // while to write on a busy machine) — not the 12,000+ sent before.
    expect(objectsResent).toBeLessThanOrEqual(3750 + 3000);
    // Checkpoints are folded into the buckets' state: none is left.
    const left: string[] = [];
    for await (const b of BlobServiceClient.fromConnectionString(azurite().connectionString)
      .getContainerClient('sync-state')
      .listBlobsFlat({ prefix: `${exp.body.id}/` }))
      if (b.name.includes('.early-')) left.push(b.name);
    expect(left).toEqual([]);
  }, 90_000);
});
