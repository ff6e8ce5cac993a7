// Delta sync: only what changed reaches Braze; leavers lose their membership once; failures retry.
import { beforeEach, describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { useAzurite } from '../helpers/app';
import { COLUMNS, MATCHING, rows, type TableSpec } from '../helpers/ci-export';
import { createConnection, runNow, useSandbox, ADMIN, mutableExport as mutableExportAt } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

const mutableExport = (tables: TableSpec[], over: Record<string, unknown> = {}) => mutableExportAt(sandbox().url, tables, over);

const membership = (key: string) => sandbox().profiles.get(key)?.attributes['0000-0000-0000'];

describe('one run per export at a time', () => {
  it('concurrent starts: exactly one run is queued, the others are told which run is active', async () => {
    const { exp } = await mutableExport([{ segment: 'S', partitions: [rows(5)] }]);
    const app = services();
    const record = (await app.exports.get(exp.id)).value;
    const outcomes = await Promise.all([
      app.runs.runNow(ADMIN, exp.id, false),
      app.runs.start(record, 'schedule', 'scheduledRefresh'),
      app.runs.runNow(ADMIN, exp.id, false),
    ]);
    const queued = outcomes.filter((o) => 'queued' in o);
    expect(queued).toHaveLength(1);
    const winner = (queued[0] as { queued: { id: string } }).queued.id;
    for (const o of outcomes.filter((o) => 'active' in o)) expect((o as { active: { id: string } }).active.id).toBe(winner);
    expect((await app.runs.listForExport(exp.id)).map((r) => r.id)).toEqual([winner]);
    await app.storage.runQueue.clearMessages();
    await app.worker.execute(winner, () => undefined);
    expect((await app.runs.get(winner)).status).toBe('succeeded');
  });
});

describe('delta sync', () => {
  it('an unchanged re-run sends nothing', async () => {
    const { exp } = await mutableExport([{ segment: 'S', partitions: [rows(120)] }]);
    const first = await runNow(exp.id);
    expect(first.run.counts).toMatchObject({ sent: 120, unchanged: 0 });
    const requests = sandbox().stats.requests;
    const second = await runNow(exp.id);
    expect(second.run.status).toBe('succeeded');
    expect(second.run.counts).toMatchObject({ profiles: 120, sent: 0, unchanged: 120 });
    expect(second.run.requests).toMatchObject({ sent: 0 });
    expect(sandbox().stats.requests).toBe(requests);
  });

  it('profiles whose rows did not change are unchanged at once, omitted values still counted; a change in any row is sent', async () => {
    const A = rows(30) + 'c40,u40,not-an-email,Forty\n';
    const B = rows(10, { from: 21 });
    const { exp, rewrite } = await mutableExport([
      { segment: 'A', partitions: [A] },
      { segment: 'B', partitions: [B] },
    ]);
    const first = await runNow(exp.id);
    expect(first.run.counts).toMatchObject({ profiles: 31, sent: 31 });
    expect(first.run.omittedAttributes).toEqual({ email: 1 });
    // Rows reordered (partitions are rewritten whole) and one row of a profile in both segments changed.
    const lines = A.trim().split('\n').reverse().join('\n') + '\n';
    await rewrite([
      { segment: 'A', partitions: [lines] },
      { segment: 'B', partitions: [B.replace('c25,u25,p25@example.com,Name25', 'c25,u25,p25@example.com,Renamed25')] },
    ]);
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ profiles: 31, sent: 0, unchanged: 31 }); // A's name wins the merge: nothing to send
    expect(run.omittedAttributes).toEqual({ email: 1 });
    await rewrite([
      { segment: 'A', partitions: [lines.replace('c25,u25,p25@example.com,Name25', 'c25,u25,p25@example.com,Renamed25')] },
      { segment: 'B', partitions: [B] },
    ]);
    const third = await runNow(exp.id);
    expect(third.run.counts).toMatchObject({ profiles: 31, sent: 1, unchanged: 30 });
    expect(sandbox().profiles.get('external_id:u25')?.attributes.first_name).toBe('Renamed25');
  });

  it('a column whose type model.json changes is sent again as the new type, though no row changed', async () => {
    const columns = (scoreType: string) => [...COLUMNS, { name: 'Score', dataType: scoreType }];
    const text = rows(6).replace(/\n/g, (_, at: number) => `,${at % 7}0\n`);
    const { exp, rewrite } = await mutableExport([{ segment: 'S', columns: columns('string'), partitions: [text] }], {
      matching: { ...MATCHING, attributes: { ...MATCHING.attributes, score: 'Score' } },
    });
    await runNow(exp.id);
    expect(typeof sandbox().profiles.get('external_id:u1')?.attributes.score).toBe('string');
    await rewrite([{ segment: 'S', columns: columns('int64'), partitions: [text] }]);
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ profiles: 6, sent: 6, unchanged: 0 });
    expect(typeof sandbox().profiles.get('external_id:u1')?.attributes.score).toBe('number');
    // The same types again: unchanged at once.
    await rewrite([{ segment: 'S', columns: columns('int64'), partitions: [text] }]);
    expect((await runNow(exp.id)).run.counts).toMatchObject({ profiles: 6, sent: 0, unchanged: 6 });
  });

  it('a profile in two segments whose tables type a column differently: the first segment type wins, though its rows are alike and rows of the other segment come first', async () => {
    const withScore = (text: string) => text.replace(/\n/g, (_, at: number) => `,0${at % 7}0\n`);
    const { exp } = await mutableExport(
      [
        { segment: 'A', columns: [...COLUMNS, { name: 'Score', dataType: 'int64' }], partitions: [withScore(rows(6))] },
        // B, one profile more, is the segment sent early: its rows are spilled first (A's wait, read for their keys).
        {
          segment: 'B',
          columns: [...COLUMNS, { name: 'Score', dataType: 'string' }],
          partitions: [withScore(rows(6)) + withScore(rows(1, { from: 7 }))],
        },
      ],
      { matching: { ...MATCHING, attributes: { ...MATCHING.attributes, score: 'Score' } } },
    );
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ profiles: 7, sent: 7 });
    const inBoth = sandbox()
      .profileList()
      .filter((p) => (p.attributes['0000-0000-0000'] as string[]).length === 2);
    expect(inBoth).toHaveLength(6);
    for (const profile of inBoth)
      expect(profile.attributes).toMatchObject({ score: expect.any(Number), '0000-0000-0000': ['A', 'B'] });
  });

  it('a changed email sends exactly that profile', async () => {
    const { exp, rewrite } = await mutableExport([{ segment: 'S', partitions: [rows(50)] }]);
    await runNow(exp.id);
    const updatesBefore = sandbox().profiles.get('external_id:u7')!.updates;
    await rewrite([{ segment: 'S', partitions: [rows(50).replace('p7@example.com', 'new7@example.com')] }]);
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ profiles: 50, sent: 1, unchanged: 49 });
    expect(sandbox().stats.objectsProcessed).toBe(51);
    expect(sandbox().profiles.get('external_id:u7')).toMatchObject({
      attributes: { email: 'new7@example.com' },
      updates: updatesBefore + 1,
    });
  });

  it('a profile removed from one segment loses that segment from its list', async () => {
    const { exp, rewrite } = await mutableExport([
      { segment: 'A', partitions: [rows(10)] },
      { segment: 'B', partitions: [rows(10)] },
    ]);
    await runNow(exp.id);
    expect(membership('external_id:u3')).toEqual(['A', 'B']);
    await rewrite([
      { segment: 'A', partitions: [rows(10)] },
      { segment: 'B', partitions: [rows(10).replace('c3,u3,p3@example.com,Name3\n', '')] },
    ]);
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ sent: 1, unchanged: 9, removed: 0 });
    expect(membership('external_id:u3')).toEqual(['A']);
  });

  it('a profile removed from all segments gets its membership attribute removed, once', async () => {
    const { exp, rewrite } = await mutableExport([{ segment: 'S', partitions: [rows(10)] }]);
    await runNow(exp.id);
    await rewrite([{ segment: 'S', partitions: [rows(10).replace('c4,,p4@example.com,Name4\n', '')] }]);
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ profiles: 9, unchanged: 9, sent: 0, removed: 1 });
    const leaver = sandbox().profiles.get('alias:ci_customer_id:c4')!;
    expect(leaver.attributes).not.toHaveProperty('0000-0000-0000');
    expect(leaver.attributes.email).toBe('p4@example.com'); // only membership is touched
    const { run: again } = await runNow(exp.id);
    expect(again.counts).toMatchObject({ removed: 0, sent: 0 });
  });

  it('boolean membership: a leaver keeps false for the segment it left', async () => {
    const { exp, rewrite } = await mutableExport(
      [
        { segment: 'A', partitions: [rows(3)] },
        { segment: 'B', partitions: [rows(3)] },
      ],
      { membership: { format: 'boolean', booleanPrefix: 'ci_' } },
    );
    await runNow(exp.id);
    expect(sandbox().profiles.get('external_id:u1')!.attributes).toMatchObject({ ci_A: true, ci_B: true });
    await rewrite([
      { segment: 'A', partitions: [rows(3)] },
      { segment: 'B', partitions: [rows(2, { from: 2 })] },
    ]);
    await runNow(exp.id);
    expect(sandbox().profiles.get('external_id:u1')!.attributes).toMatchObject({ ci_A: true, ci_B: false });
  });

  it('a profile that failed to send keeps its old state, so the next run retries it', async () => {
    const { exp } = await mutableExport([{ segment: 'S', partitions: [rows(80)] }]);
    sandbox().setFaults({ fail5xx: 1000 });
    const failed = await runNow(exp.id);
    expect(failed.run.status).toBe('partially_succeeded');
    expect(failed.run.counts).toMatchObject({ profiles: 80, sent: 0, failed: 80 });
    // The run says why, for a person to act on.
    expect(failed.run.errors).toEqual([
      'Braze did not take 80 profiles (Braze unavailable after 6 attempts (HTTP 503)): they count as failed; the next run sends them again',
    ]);
    sandbox().setFaults({ fail5xx: 0 });
    const retried = await runNow(exp.id);
    expect(retried.run.counts).toMatchObject({ sent: 80, unchanged: 0, failed: 0 });
  }, 60_000);

  it('fullSync resends everything; changing the mapping invalidates the state', async () => {
    const { exp } = await mutableExport([{ segment: 'S', partitions: [rows(30)] }]);
    await runNow(exp.id);
    const full = await runNow(exp.id, { fullSync: true });
    expect(full.run.counts).toMatchObject({ sent: 30, unchanged: 0 });
    await services().exports.update(ADMIN, exp.id, { matching: { ...MATCHING, attributes: { nickname: 'FirstName' } } }, null);
    const remapped = await runNow(exp.id);
    expect(remapped.run.counts).toMatchObject({ sent: 30, unchanged: 0 });
    expect(sandbox().profiles.get('external_id:u1')!.attributes.nickname).toBe('Name1');
  });

  it('moving the export to another connection (maybe another Braze workspace) resends its profiles', async () => {
    const { exp } = await mutableExport([{ segment: 'S', partitions: [rows(20)] }]);
    await runNow(exp.id);
    const other = await createConnection(sandbox().url);
    // Moving is detach (here keeping what Braze has: the same sandbox stands for both workspaces) + attach.
    await services().exports.detach(ADMIN, exp.id, null, true);
    await services().exports.update(ADMIN, exp.id, { connectionId: other.id }, null);
    const moved = await runNow(exp.id);
    expect(moved.run.counts).toMatchObject({ sent: 20, unchanged: 0 });
  });
});
