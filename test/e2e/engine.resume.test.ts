// A worker process killed mid-run (SIGKILL, not a thrown exception) in the bucket phase: the next
// worker resumes from the checkpoint, Braze ends equal to the snapshot, and the counts still add up.
import { BlobServiceClient } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { SANDBOX_KEY } from '../helpers/engine';
import { useKillableHosts } from '../helpers/killable-hosts';

const { azurite, sandbox, startHost, api, runEnded, runFolders } = useKillableHosts();
const PROFILES = 3000;

describe('resumable runs', () => {
  it('a run killed mid-way resumes from its checkpoint and ends with Braze equal to the snapshot', async () => {
    const source = await writeCiExport(BlobServiceClient.fromConnectionString(azurite().connectionString), [
      { segment: 'A', partitions: [rows(PROFILES)] },
      { segment: 'B', partitions: [rows(PROFILES / 2)] },
    ]);
    const first = await startHost();
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

    // Killed once three buckets are done and the checkpoint of what was sent early (A's profiles
    // that B lacks) is written: it goes beside the buckets, and nothing orders the two.
    const state = BlobServiceClient.fromConnectionString(azurite().connectionString).getContainerClient('sync-state');
    const checkpointed = async () => {
      for await (const b of state.listBlobsFlat({ prefix: `${exp.body.id}/` })) if (b.name.includes('.early-')) return true;
      return false;
    };
    let progress: any;
    for (let i = 0; i < 300; i++) {
      progress = (await api(first, 'GET', `runs/${started.body.runId}`)).body;
      if (progress.progress && progress.progress.bucketsDone >= 3 && (await checkpointed())) break;
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
    // The whole way back: the message returns after its visibility timeout, and the new worker waits
    // out the killed one's leases (up to 15 s) before it resumes.
    const second = await startHost();
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
    // under way (three at a time, ~8 KB of CSV, ~220 profiles each): never what was checkpointed.
    const resent = sandbox.stats.objectsProcessed - PROFILES;
    expect(resent).toBeLessThanOrEqual(Math.max(0.05 * PROFILES, 3 * 250));
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
});
