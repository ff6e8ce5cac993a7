// Braze mirrors CI for everything the export maps, and nothing else: values emptied in CI are
// cleared, membership is withdrawn wherever it was written. Asserted on the sandbox's users.
import { beforeEach, describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { useAzurite } from '../helpers/app';
import { rows, type TableSpec } from '../helpers/ci-export';
import { ADMIN, createConnection, runNow, useSandbox, mutableExport as mutableExportAt } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

const mutableExport = (tables: TableSpec[], over: Record<string, unknown> = {}) => mutableExportAt(sandbox().url, tables, over);

const user = (key: string) => sandbox().profiles.get(key)?.attributes;
const SEG = '0000-0000-0000';

describe('a value cleared in CI is cleared in Braze', () => {
  it('an emptied name or email is sent as null once; an invalid one is left as it was; new profiles send no nulls', async () => {
    const { exp, rewrite } = await mutableExport([{ segment: 'S', partitions: [rows(4)] }]);
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    expect(user('external_id:u1')).toMatchObject({ email: 'p1@example.com', first_name: 'Name1' });

    // c1: name emptied; c2: email emptied; c3: email turns invalid; c4 unchanged; c5 new, with an empty name.
    await rewrite([
      {
        segment: 'S',
        partitions: [
          'c1,u1,p1@example.com,\nc2,,,Name2\nc3,u3,not-an-email,Name3\nc4,,p4@example.com,Name4\nc5,u5,p5@example.com,\n',
        ],
      },
    ]);
    const { run } = await runNow(exp.id);
    // c3's object changed too (its email is left out now), though Braze keeps the email it has.
    expect(run.counts).toMatchObject({ profiles: 5, sent: 4, unchanged: 1 });
    expect(run.omittedAttributes).toMatchObject({ email: 1 });
    expect(user('external_id:u1')).toEqual({ email: 'p1@example.com', [SEG]: ['S'] });
    expect(user('alias:ci_customer_id:c2')).toEqual({ first_name: 'Name2', [SEG]: ['S'] });
    expect(user('external_id:u3')).toMatchObject({ email: 'p3@example.com', first_name: 'Name3' }); // invalid is not a clear
    expect(user('external_id:u5')).toEqual({ email: 'p5@example.com', [SEG]: ['S'] });

    // Once cleared, never again: the same snapshot sends nothing.
    const before = sandbox().stats.objectsProcessed;
    const third = await runNow(exp.id, { fullSync: false });
    expect(third.run.counts).toMatchObject({ sent: 0 });
    expect(sandbox().stats.objectsProcessed).toBe(before);
  });

  it('a value emptied while the profile also changed elsewhere is cleared with that change', async () => {
    const { exp, rewrite } = await mutableExport([{ segment: 'S', partitions: [rows(2)] }]);
    await runNow(exp.id);
    await rewrite([{ segment: 'S', partitions: ['c1,u1,new1@example.com,\nc2,,p2@example.com,Name2\n'] }]);
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ sent: 1, unchanged: 1 });
    expect(user('external_id:u1')).toEqual({ email: 'new1@example.com', [SEG]: ['S'] });
  });
});

describe('membership is withdrawn wherever it was written', () => {
  const two: TableSpec[] = [
    { segment: 'A', partitions: [rows(3)] },
    { segment: 'B', partitions: [rows(2)] },
  ];

  it('renaming membership.attribute: the old attribute is removed from every profile that had it', async () => {
    const { exp, patch } = await mutableExport(two);
    await runNow(exp.id);
    expect(user('external_id:u1')![SEG]).toEqual(['A', 'B']);
    await patch({ membership: { attribute: 'ci_segments' } });
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    for (const key of ['external_id:u1', 'alias:ci_customer_id:c2', 'external_id:u3']) {
      expect(user(key)).not.toHaveProperty(SEG);
      expect(user(key)!.ci_segments).toBeDefined();
    }
    expect(user('external_id:u3')!.ci_segments).toEqual(['A']);
  });

  it('renaming brazeSegmentApiId (the default attribute) does the same', async () => {
    const { exp, patch } = await mutableExport(two, { membership: { format: 'list' } });
    await runNow(exp.id);
    await patch({ brazeSegmentApiId: '1111-1111-1111' });
    await runNow(exp.id);
    expect(user('external_id:u1')).not.toHaveProperty(SEG);
    expect(user('external_id:u1')!['1111-1111-1111']).toEqual(['A', 'B']);
  });

  it('switching list → boolean removes the list; boolean → list and a new prefix set the old booleans false', async () => {
    const { exp, patch } = await mutableExport(two);
    await runNow(exp.id);
    await patch({ membership: { format: 'boolean', booleanPrefix: 'ci_' } });
    await runNow(exp.id);
    expect(user('external_id:u1')).not.toHaveProperty(SEG);
    expect(user('external_id:u1')).toMatchObject({ ci_A: true, ci_B: true });
    expect(user('external_id:u3')).toMatchObject({ ci_A: true, ci_B: false });

    await patch({ membership: { format: 'boolean', booleanPrefix: 'seg_' } });
    await runNow(exp.id);
    expect(user('external_id:u1')).toMatchObject({ ci_A: false, ci_B: false, seg_A: true, seg_B: true });

    await patch({ membership: { format: 'list', attribute: 'segs' } });
    await runNow(exp.id);
    expect(user('external_id:u1')).toMatchObject({ seg_A: false, seg_B: false, segs: ['A', 'B'] });
  });

  it('a profile that leaves as the attribute is renamed loses the old attribute', async () => {
    const { exp, rewrite, patch } = await mutableExport([{ segment: 'A', partitions: [rows(3)] }]);
    await runNow(exp.id);
    await rewrite([{ segment: 'A', partitions: [rows(2)] }]); // c3 leaves
    await patch({ membership: { attribute: 'ci_segments' } });
    const { run } = await runNow(exp.id);
    expect(run.counts).toMatchObject({ removed: 1 });
    expect(user('external_id:u3')).not.toHaveProperty(SEG);
    expect(user('external_id:u3')).not.toHaveProperty('ci_segments');
  });

  it('a profile whose identity changes (alias → external_id, or another external_id): the old Braze user loses the membership', async () => {
    const { exp, rewrite } = await mutableExport([{ segment: 'A', partitions: [rows(3)] }]);
    await runNow(exp.id);
    expect(user('alias:ci_customer_id:c2')![SEG]).toEqual(['A']);
    // c2 gets a Braze customer ID; c3's changes from u3 to u33.
    await rewrite([
      { segment: 'A', partitions: ['c1,u1,p1@example.com,Name1\nc2,u2,p2@example.com,Name2\nc3,u33,p3@example.com,Name3\n'] },
    ]);
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect(user('alias:ci_customer_id:c2')).not.toHaveProperty(SEG);
    expect(user('external_id:u2')![SEG]).toEqual(['A']);
    expect(user('external_id:u3')).not.toHaveProperty(SEG);
    expect(user('external_id:u33')![SEG]).toEqual(['A']);
  });
});

describe('deleting, detaching or moving an export withdraws its membership at the old destination', () => {
  /** Plays the queue worker for a run the API queued. */
  async function work(runId: string) {
    const app = services();
    await app.storage.runQueue.clearMessages();
    for (let i = 0; i < 5; i++) {
      await app.worker.execute(runId, () => undefined);
      const run = await app.runs.get(runId);
      if (!['queued', 'running'].includes(run.status)) return run;
    }
    throw new Error('run did not end');
  }

  it('DELETE answers 202 with a cleanup run; once Braze lost the membership, the export is gone', async () => {
    const app = services();
    const { exp } = await mutableExport([{ segment: 'A', partitions: [rows(3)] }]);
    await runNow(exp.id);
    expect(user('external_id:u1')![SEG]).toEqual(['A']);
    const outcome = await app.exports.delete(ADMIN, exp.id, null);
    if (!('cleanupRun' in outcome)) throw new Error('expected a cleanup run');
    expect(await app.exports.get(exp.id)).toBeTruthy(); // still there while Braze holds the membership
    const run = await work(outcome.cleanupRun.id);
    expect(run).toMatchObject({
      status: 'succeeded',
      kind: 'cleanup',
      counts: expect.objectContaining({ removed: 3, removalsFailed: 0 }),
    });
    for (const key of ['external_id:u1', 'alias:ci_customer_id:c2', 'external_id:u3']) expect(user(key)).not.toHaveProperty(SEG);
    expect(user('external_id:u1')).toMatchObject({ email: 'p1@example.com' }); // only the membership goes
    await expect(app.exports.get(exp.id)).rejects.toMatchObject({ status: 404 });
  });

  it('?keepBrazeData=true deletes at once and leaves Braze as it is', async () => {
    const app = services();
    const { exp } = await mutableExport([{ segment: 'A', partitions: [rows(2)] }]);
    await runNow(exp.id);
    expect(await app.exports.delete(ADMIN, exp.id, null, true)).toEqual({ deleted: true });
    expect(user('external_id:u1')![SEG]).toEqual(['A']);
  });

  it('a withdrawal Braze does not take keeps the export (partially_succeeded); deleting again finishes the job', async () => {
    const app = services();
    const { exp } = await mutableExport([{ segment: 'A', partitions: [rows(2)] }]);
    await runNow(exp.id);
    sandbox().setFaults({ fail5xx: 1000 });
    const first = await app.exports.delete(ADMIN, exp.id, null);
    const failed = await work('cleanupRun' in first ? first.cleanupRun.id : '');
    expect(failed.status).toBe('partially_succeeded');
    expect(failed.errors.at(-1)).toMatch(/export was kept/);
    expect((await app.exports.get(exp.id)).value.id).toBe(exp.id);
    sandbox().setFaults({ fail5xx: 0 });
    const second = await app.exports.delete(ADMIN, exp.id, null);
    expect((await work('cleanupRun' in second ? second.cleanupRun.id : '')).status).toBe('succeeded');
    expect(user('external_id:u1')).not.toHaveProperty(SEG);
    await expect(app.exports.get(exp.id)).rejects.toMatchObject({ status: 404 });
  }, 60_000);

  it('detach withdraws the membership with the connection key first, then detaches; moving to another connection asks for that', async () => {
    const app = services();
    const { exp, patch } = await mutableExport([{ segment: 'A', partitions: [rows(2)] }], {
      membership: { format: 'boolean', booleanPrefix: 'in_' },
    });
    await runNow(exp.id);
    expect(user('external_id:u1')).toMatchObject({ in_A: true });
    const other = await createConnection(sandbox().url);
    await expect(patch({ connectionId: other.id })).rejects.toMatchObject({
      status: 409,
      message: expect.stringMatching(/detach it first/),
    });
    const outcome = await app.exports.detach(ADMIN, exp.id, null);
    const run = await work('cleanupRun' in outcome ? outcome.cleanupRun.id : '');
    expect(run.status).toBe('succeeded');
    expect(user('external_id:u1')).toMatchObject({ in_A: false });
    expect((await app.exports.get(exp.id)).value).toMatchObject({ status: 'inactive', connectionId: null });
    // Attached to the other connection now, it starts afresh there.
    await patch({ connectionId: other.id });
    expect((await runNow(exp.id)).run.counts).toMatchObject({ sent: 2 });
  });
});
