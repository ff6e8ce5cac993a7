// Left alone in a customer's subscription, one budget per Braze rate limit: runs on one connection,
// or on connections in one rate-limit group, share it across workers (as on several instances).
import { beforeEach, describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { createConnection, createExport, useSandbox } from '../helpers/engine';
import { noLog, queueRun } from '../helpers/worker-runs';

useAzurite();
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

describe('one budget per Braze rate limit', () => {
  it('three exports on one connection together stay within its budget', async () => {
    const app = services();
    const conn = await createConnection(sandbox().url, { requestBudget: 30 });
    const exports = [];
    for (let k = 0; k < 3; k++) {
      const source = await writeCiExport(app.storage.ciBlobs, [
        { segment: 'S', partitions: [rows(1500, { from: k * 10_000 + 1 })] },
      ]);
      exports.push(await createExport(conn.id, { source, segments: ['S'], matching: MATCHING }));
    }
    const runIds = [];
    for (const e of exports) runIds.push(await queueRun(e.id));
    // All three messages arrive at once (as on three instances); whoever does not get the limit waits.
    const pending = new Set(runIds);
    let waited = false;
    while (pending.size) {
      await Promise.all([...pending].map((id) => app.worker.execute(id, noLog)));
      for (const id of [...pending]) {
        const run = await app.runs.get(id);
        if (run.waitingFor) waited = true;
        if (run.status === 'succeeded') pending.delete(id);
      }
    }
    expect(waited).toBe(true);
    expect(sandbox().stats.objectsProcessed).toBe(4500);
    expect(sandbox().maxRequestsInWindow(3000)).toBeLessThanOrEqual(30);
  }, 90_000);

  it('connections an Admin puts in one rate-limit group share one budget', async () => {
    const app = services();
    const group = `company-${Date.now()}`;
    const runIds = [];
    for (let k = 0; k < 2; k++) {
      const conn = await createConnection(sandbox().url, { requestBudget: 30, rateLimitGroup: group });
      const source = await writeCiExport(app.storage.ciBlobs, [
        { segment: 'S', partitions: [rows(1500, { from: k * 10_000 + 1 })] },
      ]);
      runIds.push(await queueRun((await createExport(conn.id, { source, segments: ['S'], matching: MATCHING })).id));
    }
    const pending = new Set(runIds);
    while (pending.size) {
      await Promise.all([...pending].map((id) => app.worker.execute(id, noLog)));
      for (const id of [...pending]) if ((await app.runs.get(id)).status === 'succeeded') pending.delete(id);
    }
    expect(sandbox().stats.objectsProcessed).toBe(3000);
    expect(sandbox().maxRequestsInWindow(3000)).toBeLessThanOrEqual(30);
  }, 90_000);

  it("a run that ends in a burst keeps the limit until it has left Braze's window: the next run stays within the budget", async () => {
    const app = services();
    const conn = await createConnection(sandbox().url, { requestBudget: 30 });
    const exportWith = async (profiles: number, from: number) => {
      const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(profiles, { from })] }]);
      return queueRun((await createExport(conn.id, { source, segments: ['S'], matching: MATCHING })).id);
    };
    const [short, long] = [await exportWith(750, 1), await exportWith(2250, 10_000)];
    // Two seconds of 429s: the short run's 10 requests wait, then catch up at once.
    sandbox().setFaults({ rateLimitForMs: 2000 });
    await app.worker.execute(short, noLog);
    await app.worker.execute(long, noLog);
    for (const id of [short, long]) expect((await app.runs.get(id)).status).toBe('succeeded');
    expect(sandbox().stats.objectsProcessed).toBe(3000);
    expect(sandbox().maxRequestsInWindow(3000)).toBeLessThanOrEqual(30);
  }, 90_000);
});
