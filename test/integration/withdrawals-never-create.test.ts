// Withdrawals never create: a user deleted in Braze (an erasure request included) stays deleted when
// the export later withdraws its membership — as a leaver, after an identity change, or in the
// cleanup before the export is deleted. On Azurite and the Braze sandbox, whose users are deleted
// through its /users/delete and which honours `_update_existing_only` as Braze does.
import { beforeEach, describe, expect, it } from 'vitest';
import { BrazeObjectWriter } from '../../shared/engine/profile/object-writer';
import { services } from '../../shared/services';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows } from '../helpers/ci-export';
import { ADMIN, mutableExport, runNow, SANDBOX_KEY, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

const SEG = '0000-0000-0000';

/** Deletes users as a Braze admin (or an erasure request) would: through the sandbox's /users/delete. */
async function deleteInBraze(body: { external_ids?: string[]; user_aliases?: { alias_name: string; alias_label: string }[] }) {
  const res = await fetch(`${sandbox().url}/users/delete`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${SANDBOX_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { deleted: number };
}

const alias = (name: string) => ({ alias_name: name, alias_label: 'ci_customer_id' });

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

describe('the sandbox models _update_existing_only as Braze does', () => {
  it('an update-only object for a user that does not exist creates nothing; a deleted user stays deleted', async () => {
    const track = (attributes: unknown[]) =>
      fetch(`${sandbox().url}/users/track`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${SANDBOX_KEY}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ attributes }),
      });
    expect((await track([{ external_id: 'x1', first_name: 'A' }])).status).toBe(201);
    expect(await deleteInBraze({ external_ids: ['x1'] })).toEqual({ deleted: 1, message: 'success' });
    expect((await track([{ external_id: 'x1', _update_existing_only: true, seg: null }])).status).toBe(201);
    expect((await track([{ user_alias: alias('c9'), seg: null }])).status).toBe(201); // aliases: update-only by default
    expect(sandbox().profiles.size).toBe(0);
    expect(sandbox().stats.skippedUpdateOnly).toBe(2);
    // Without the flag an external_id is created again, as Braze does: the reason withdrawals carry it.
    await track([{ external_id: 'x1', seg: null }]);
    expect(sandbox().profiles.has('external_id:x1')).toBe(true);
  });
});

describe('withdrawals never re-create users deleted in Braze', () => {
  it('every object that only withdraws membership carries _update_existing_only: true, aliases included', () => {
    const def = {
      segments: ['A', 'B'],
      brazeSegmentApiId: SEG,
      membership: { format: 'list' as const, booleanPrefix: 'in_' },
      matching: { ...MATCHING, aliasLabel: 'ci_customer_id', attributes: {} },
    } as unknown as ConstructorParameters<typeof BrazeObjectWriter>[0];
    const writer = new BrazeObjectWriter(def);
    expect(JSON.parse(writer.leaver('e:u1'))).toEqual({ external_id: 'u1', _update_existing_only: true, [SEG]: null });
    expect(JSON.parse(writer.leaver('a:c2'))).toEqual({ user_alias: alias('c2'), _update_existing_only: true, [SEG]: null });
    // Written under other settings (boolean format): the old names are withdrawn, update-only too.
    expect(JSON.parse(writer.leaver('a:c2', { format: 'boolean', names: ['in_A'] }))).toEqual({
      user_alias: alias('c2'),
      _update_existing_only: true,
      in_A: false,
    });
  });

  it('leavers deleted in Braze stay deleted; leavers still there lose only their membership', async () => {
    const { exp, rewrite } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(6)] }]);
    await runNow(exp.id);
    expect(sandbox().profiles.size).toBe(6);
    await deleteInBraze({ external_ids: ['u1'], user_aliases: [alias('c2')] });
    // c1..c4 leave the segment: u1 and c2 were deleted in Braze, u3 and c4 still exist.
    await rewrite([{ segment: 'A', partitions: [rows(2, { from: 5 })] }]);
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.counts).toMatchObject({ removed: 4 });
    expect(sandbox().profiles.has('external_id:u1')).toBe(false);
    expect(sandbox().profiles.has('alias:ci_customer_id:c2')).toBe(false);
    expect(sandbox().stats.skippedUpdateOnly).toBe(2);
    expect(sandbox().profiles.get('external_id:u3')!.attributes).not.toHaveProperty(SEG);
    expect(sandbox().profiles.get('alias:ci_customer_id:c4')!.attributes).toMatchObject({ email: 'p4@example.com' });
    expect(sandbox().profiles.get('external_id:u5')!.attributes[SEG]).toEqual(['A']);
  });

  it('a profile whose identity changed: its old Braze user, deleted meanwhile, is not re-created', async () => {
    const { exp, rewrite } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(2)] }]);
    await runNow(exp.id);
    await deleteInBraze({ user_aliases: [alias('c2')] });
    // c2 gets a Braze customer ID: its membership moves to external_id u2-new; the old alias is withdrawn.
    await rewrite([{ segment: 'A', partitions: ['c1,u1,p1@example.com,Name1\nc2,u2-new,p2@example.com,Name2\n'] }]);
    expect((await runNow(exp.id)).run.status).toBe('succeeded');
    expect(sandbox().profiles.has('alias:ci_customer_id:c2')).toBe(false);
    expect(sandbox().profiles.get('external_id:u2-new')!.attributes[SEG]).toEqual(['A']);
  });

  it('the cleanup before DELETE withdraws from the users still there and re-creates none of the deleted ones', async () => {
    const app = services();
    const { exp } = await mutableExport(sandbox().url, [{ segment: 'A', partitions: [rows(4)] }]);
    await runNow(exp.id);
    await deleteInBraze({ external_ids: ['u3'], user_aliases: [alias('c4')] });
    const outcome = await app.exports.delete(ADMIN, exp.id, null);
    if (!('cleanupRun' in outcome)) throw new Error('expected a cleanup run');
    const run = await work(outcome.cleanupRun.id);
    expect(run.status).toBe('succeeded');
    expect(sandbox().profiles.has('external_id:u3')).toBe(false);
    expect(sandbox().profiles.has('alias:ci_customer_id:c4')).toBe(false);
    expect(sandbox().profiles.get('external_id:u1')!.attributes).not.toHaveProperty(SEG);
    expect(sandbox().profiles.get('alias:ci_customer_id:c2')!.attributes).not.toHaveProperty(SEG);
    expect(sandbox().profiles.size).toBe(2);
  });
});
