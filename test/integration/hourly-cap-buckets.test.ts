// A run of many buckets on a connection with an hourly request cap, against Azurite and the Braze
// sandbox: it stops before the first bucket that does not fit the hour (nothing failed, nothing
// half-sent), waits `running` for the next hour with the reason on the run, and a person can
// cancel it at once while it waits; the next run sends the rest.
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

describe('a run of many buckets under an hourly cap', () => {
  it('stops before a bucket that does not fit, waits for the next hour, and is cancelled at once while it waits', async () => {
    const app = services();
    const conn = await createConnection(sandbox().url, { hourlyRequestCap: 5 });
    const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(600)] }]);
    const exp = await createExport(conn.id, { source, segments: ['S'], matching: MATCHING });
    const outcome = await app.runs.runNow(ADMIN, exp.id, false);
    if (!('queued' in outcome)) throw new Error('expected a queued run');
    const runId = outcome.queued.id;
    await app.storage.runQueue.clearMessages();
    await app.worker.execute(runId, () => undefined);

    const run = await app.runs.get(runId);
    expect(run.buckets!.total).toBeGreaterThan(2);
    expect(run.buckets!.done.length).toBeLessThan(run.buckets!.total);
    expect(sandbox().stats.requests).toBeGreaterThan(0);
    expect(sandbox().stats.requests).toBeLessThanOrEqual(5);
    expect(run.status).toBe('running');
    expect(run.waitingFor).toMatch(/hourly request cap \(5 requests an hour\): resumes at \d\d:00 UTC/);
    expect(run.counts!.failed).toBe(0); // stopped between buckets: nothing half-sent
    expect(run.counts!.sent).toBe(sandbox().profiles.size);

    const cancelled = await app.runs.cancel(ADMIN, runId);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.errors.join(' ')).toMatch(/while it waited for the connection's hourly request cap/);
    // The next run, the cap lifted, sends the rest and nothing twice.
    const sentBefore = sandbox().profiles.size;
    await app.connections.update(ADMIN, conn.id, { hourlyRequestCap: null }, null);
    const next = (await runNow(exp.id)).run;
    expect(next.status).toBe('succeeded');
    expect(next.counts!.sent).toBe(600 - sentBefore);
    expect(sandbox().profiles.size).toBe(600);
  });
});
