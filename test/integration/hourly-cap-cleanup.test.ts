// A cleanup run on a connection with an hourly request cap, against Azurite and the Braze sandbox:
// it reserves each bucket's withdrawals before the bucket goes, and once the cap is reached it waits
// for the next hour (nothing counted as failed, the export still deleting); the cap raised, it ends
// `succeeded` with every withdrawal delivered and the export gone.
import { beforeEach, describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { ADMIN, createConnection, createExport, runNow, useSandbox } from '../helpers/engine';

useAzurite({ SYNC_BUCKET_TARGET_BYTES: '4096' }); // a 600-profile snapshot in several buckets
const sandbox = useSandbox();
beforeEach(async () => {
  sandbox().reset();
  await services().storage.runQueue.clearMessages();
  const intoHour = Date.now() % 3_600_000; // the cap counts per clock hour: do not straddle one
  if (intoHour > 3_600_000 - 45_000) await new Promise((r) => setTimeout(r, 3_600_000 - intoHour + 1000));
});

describe('a cleanup run under an hourly cap', () => {
  // 5: it stops before a bucket that does not fit; 1: the cap runs out inside a bucket (more than 75 entries).
  it.each([5, 1])(
    '(cap %i) waits for the next hour instead of failing withdrawals, then withdraws every profile and lets the export go',
    async (hourlyRequestCap) => {
      const app = services();
      const conn = await createConnection(sandbox().url);
      const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(600)] }]);
      const exp = await createExport(conn.id, { source, segments: ['S'], matching: MATCHING });
      expect((await runNow(exp.id)).run.status).toBe('succeeded');
      await app.connections.update(ADMIN, conn.id, { hourlyRequestCap }, null);
      const before = sandbox().stats.requests;

      const outcome = await app.exports.delete(ADMIN, exp.id, null);
      if (!('cleanupRun' in outcome)) throw new Error('expected a cleanup run');
      await app.storage.runQueue.clearMessages(); // the test plays the worker
      const logs: string[] = [];
      await app.worker.execute(outcome.cleanupRun.id, (l) => logs.push(l));
      let run = await app.runs.get(outcome.cleanupRun.id);
      expect(sandbox().stats.requests - before).toBeLessThanOrEqual(hourlyRequestCap);
      expect(run.status).toBe('running'); // waits, not finished
      expect(run.waitingFor).toMatch(/hourly request cap \(\d requests an hour\): resumes at \d\d:00 UTC/);
      expect(run.counts?.removalsFailed ?? 0).toBe(0);
      expect(Object.keys(run.counts ?? {})).not.toContain('capped');
      // Cap 1: it stopped inside the first bucket (75 of its entries withdrawn), and goes on from that same bucket.
      if (hourlyRequestCap === 1) expect(run).toMatchObject({ withdrawnBuckets: 0, counts: { removed: 75, profiles: 75 } });
      expect(logs.join('\n')).not.toMatch(/time box/);
      expect((await app.exports.get(exp.id)).value.status).toBe('deleting');

      // Next hour (here: the Admin lifts the cap), the run goes on from where it stopped.
      await app.connections.update(ADMIN, conn.id, { hourlyRequestCap: null }, null);
      for (let i = 0; i < 10 && ['queued', 'running'].includes(run.status); i++) {
        await app.worker.execute(run.id, () => undefined);
        run = await app.runs.get(run.id);
      }
      expect(run.status).toBe('succeeded');
      expect(run.counts).toMatchObject({ profiles: 600, removed: 600, removalsFailed: 0 });
      expect(
        sandbox()
          .profileList()
          .filter((p) => '0000-0000-0000' in p.attributes),
      ).toEqual([]);
      await expect(app.exports.get(exp.id)).rejects.toMatchObject({ status: 404 });
    },
    60_000,
  );
});
