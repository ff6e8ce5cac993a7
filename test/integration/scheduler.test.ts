// The scheduled refresh on Azurite: one export's trouble never stops the tick for the others.
import { beforeEach, describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { ADMIN, createConnection, createExport, runNow, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(async () => {
  sandbox().reset();
  // Each test looks at its own exports only.
  const app = services();
  for await (const e of app.storage.table('exports').listEntities())
    await app.storage.table('exports').deleteEntity(e.partitionKey!, e.rowKey!);
  await app.storage.runQueue.clearMessages();
});

describe('scheduledRefresh', () => {
  it('an export whose check fails unexpectedly is recorded on its lastCheck; the other exports are still queued and stalled runs re-queued', async () => {
    const app = services();
    const conn = await createConnection(sandbox().url);
    const good = await createExport(conn.id, {
      source: await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(3)] }]),
      segments: ['S'],
      matching: MATCHING,
    });
    const broken = await createExport(conn.id, {
      source: await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(3)] }]),
      segments: ['S'],
      matching: MATCHING,
    });
    // The broken export's stored schedule cannot be parsed (saved by another version, edited by hand…).
    const stored = await app.storage.table('exports').getEntity<{ data: string }>('export', broken.id);
    const data = JSON.parse(stored.data);
    data.schedule.cron = 'at noon';
    await app.storage
      .table('exports')
      .updateEntity({ partitionKey: 'export', rowKey: broken.id, data: JSON.stringify(data) }, 'Replace');
    // A third export's run stalled long ago: its worker died.
    const stalledExport = await createExport(conn.id, {
      source: await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(3)] }]),
      segments: ['S'],
      matching: MATCHING,
    });
    const stalled = await app.runs.start((await app.exports.get(stalledExport.id)).value, 'manual', 'test');
    const stalledId = 'queued' in stalled ? stalled.queued.id : '';
    await app.storage.runQueue.clearMessages();

    const logs: string[] = [];
    const summary = await app.scheduler.tick(new Date(Date.now() + 11 * 60_000), (l) => logs.push(l));
    expect(summary.errors.map((e) => e.exportId)).toEqual([broken.id]);
    expect(summary.queued).toEqual([good.id]);
    expect(summary.requeued).toEqual([stalledId]);
    const view = await app.exports.view((await app.exports.get(broken.id)).value);
    expect(view.lastCheck).toMatchObject({ result: expect.stringMatching(/^error: /) });
  });

  it('a folder long enough to push blob names past 1,024 characters is refused when saved (400 naming source.folder)', async () => {
    const app = services();
    const conn = await createConnection(sandbox().url);
    const refused = await createExport(conn.id, {
      source: { container: 'ci-exports', folder: 'f'.repeat(401) },
      segments: ['S'],
      matching: MATCHING,
    }).then(
      () => null,
      (e: unknown) => e as { status: number; issues: unknown[] },
    );
    expect(refused).toMatchObject({
      status: 400,
      issues: [expect.objectContaining({ path: 'source.folder', message: expect.stringMatching(/1,024/) })],
    });
    expect(await app.exports.listViews()).toHaveLength(0);
  });
});

describe('the timer agrees with the worker', () => {
  it.each([
    ['a mapping change', { matching: { ...MATCHING, attributes: { first_name: 'FirstName', nickname: 'FirstName' } } }],
    ['a segment change', { segments: ['S', 'T'] }],
    ['a membership change', { membership: { format: 'boolean', booleanPrefix: 'ci_' } }],
  ])('after %s the next tick queues a run, as a manual run would send', async (_what, patch) => {
    const app = services();
    const conn = await createConnection(sandbox().url);
    const source = await writeCiExport(app.storage.ciBlobs, [
      { segment: 'S', partitions: [rows(5)] },
      { segment: 'T', partitions: [rows(2)] },
    ]);
    const exp = await createExport(conn.id, { source, segments: ['S'], matching: MATCHING });
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect((await app.scheduler.tick(new Date(), () => undefined)).unchanged).toContain(exp.id);
    await app.exports.update(ADMIN, exp.id, patch, null);
    const summary = await app.scheduler.tick(new Date(Date.now() + 60_000), () => undefined);
    expect(summary.queued).toContain(exp.id);
  });

  it('profiles Braze refused get one more try from the timer, as from a manual run — once per snapshot, not every tick', async () => {
    const app = services();
    const conn = await createConnection(sandbox().url);
    const source = await writeCiExport(app.storage.ciBlobs, [
      { segment: 'S', partitions: [rows(5, { name: (i) => (i === 2 ? 'POISON' : `N${i}`) })] },
    ]);
    const exp = await createExport(conn.id, { source, segments: ['S'], matching: MATCHING });
    sandbox().setFaults({ badObjectMarker: 'POISON' });
    expect((await runNow(exp.id)).run.counts).toMatchObject({ sent: 4, rejected: 1 });
    const first = await app.scheduler.tick(new Date(Date.now() + 60_000), () => undefined);
    expect(first.queued).toContain(exp.id);
    const retried = await app.runs.listForExport(exp.id);
    await app.storage.runQueue.clearMessages();
    await app.worker.execute(retried[0]!.id, () => undefined);
    expect((await app.runs.get(retried[0]!.id)).counts).toMatchObject({ sent: 0, rejected: 1, unchanged: 4 });
    const second = await app.scheduler.tick(new Date(Date.now() + 120_000), () => undefined);
    expect(second.unchanged).toContain(exp.id);
  });
});
