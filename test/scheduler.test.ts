// The scheduled refresh on Azurite: one export's trouble never stops the tick for the others.
import { beforeEach, describe, expect, it } from 'vitest';
import { services } from '../shared/services';
import { useAzurite } from './helpers/app';
import { MATCHING, rows, writeCiExport } from './helpers/ci-export';
import { createConnection, createExport, useSandbox } from './helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(async () => {
  sandbox().reset();
  // Each test looks at its own exports only.
  const app = services();
  for await (const e of app.storage.table('exports').listEntities()) await app.storage.table('exports').deleteEntity(e.partitionKey!, e.rowKey!);
  await app.storage.runQueue.clearMessages();
});

describe('scheduledRefresh', () => {
  it('an export whose check fails unexpectedly is recorded on its lastCheck; the other exports are still queued and stalled runs re-queued', async () => {
    const app = services();
    const conn = await createConnection(sandbox().url);
    const good = await createExport(conn.id, { source: await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(3)] }]), segments: ['S'], matching: MATCHING });
    const broken = await createExport(conn.id, { source: await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(3)] }]), segments: ['S'], matching: MATCHING });
    // The broken export's stored schedule cannot be parsed (saved by another version, edited by hand…).
    const stored = await app.storage.table('exports').getEntity<{ data: string }>('export', broken.id);
    const data = JSON.parse(stored.data);
    data.schedule.cron = 'at noon';
    await app.storage.table('exports').updateEntity({ partitionKey: 'export', rowKey: broken.id, data: JSON.stringify(data) }, 'Replace');
    // A third export's run stalled long ago: its worker died.
    const stalledExport = await createExport(conn.id, { source: await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(3)] }]), segments: ['S'], matching: MATCHING });
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
    const refused = await createExport(conn.id, { source: { container: 'ci-exports', folder: 'f'.repeat(401) }, segments: ['S'], matching: MATCHING }).then(
      () => null,
      (e: unknown) => e as { status: number; issues: unknown[] },
    );
    expect(refused).toMatchObject({ status: 400, issues: [expect.objectContaining({ path: 'source.folder', message: expect.stringMatching(/1,024/) })] });
    expect(await app.exports.listViews()).toHaveLength(0);
  });
});
