// Braze proof for an export that maps a field Braze cannot export (image_url): no fingerprint taken
// from what Braze holds can equal the one the state kept of what was sent, so every profile is settled
// from the snapshot the state was built from (read once), never by trying each set of its ten
// segments. On Azurite and the Braze sandbox.
import { describe, expect, it, vi } from 'vitest';
import { BrazeUserReader } from '../../shared/verify/braze-user';

import { driftRows, edit, PROOF, SEG, useVerifyWorld, verify } from '../helpers/verify';
import { MATCHING, PHOTO_COLUMNS, rowsWithPhoto } from '../helpers/ci-export';
import { mutableExport, runNow } from '../helpers/engine';

const { sandbox } = useVerifyWorld();

const SEGMENTS = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'];
/** c1..cN in A; c5 in B too; one more profile of its own in each other segment. */
const N = 3000;
const PROFILES = N + SEGMENTS.length - 1;

async function exportedAndSent(image: boolean) {
  sandbox().exports.define({ id: PROOF, filters: SEGMENTS.map((s) => ({ attribute: SEG, includes: s })) });
  const tables = SEGMENTS.map((segment, i) => ({
    segment,
    columns: PHOTO_COLUMNS,
    partitions: [i === 0 ? rowsWithPhoto(N) : i === 1 ? rowsWithPhoto(1, N + i) + rowsWithPhoto(1, 5) : rowsWithPhoto(1, N + i)],
  }));
  const attributes = image ? { first_name: 'FirstName', image_url: 'Photo' } : { first_name: 'FirstName' };
  const { exp } = await mutableExport(sandbox().url, tables, { proofSegmentId: PROOF, matching: { ...MATCHING, attributes } });
  const { run } = await runNow(exp.id);
  expect(run.status).toBe('succeeded');
  expect(run.counts!.sent).toBe(PROFILES);
  return exp;
}

describe('verifying an export that maps a field Braze cannot export, over ten segments', () => {
  it('no drift: all matched, each profile settled from the snapshot, none by a search over its segments', async () => {
    const plain = await verify((await exportedAndSent(false)).id);
    expect(plain.verify!.counts).toMatchObject({ inState: PROFILES, matched: PROFILES, stale: 0, missing: 0, extra: 0 });
    expect(plain.verify!.sentValues).toBeUndefined(); // nothing drifted: the snapshot is not read

    const exp = await exportedAndSent(true);
    // The reader's comparison by fingerprint, which tries each of the 1,023 sets of ten segments when
    // the fingerprints differ (about 5 s here, 25 minutes for a million profiles): never asked.
    const search = vi.spyOn(BrazeUserReader.prototype, 'compare');
    const run = await verify(exp.id);
    expect(search).not.toHaveBeenCalled();
    search.mockRestore();
    expect(run.status).toBe('succeeded');
    expect(run.verify!.counts).toEqual({
      inState: PROFILES,
      inBraze: PROFILES,
      matched: PROFILES,
      missing: 0,
      extra: 0,
      stale: 0,
      unknown: 0,
    });
    expect(run.verify!.unverifiableFields).toEqual(['image_url']);
    expect(run.verify!.summary).toMatch(/^No drift: .*Not verified: image_url/);
    // Every profile is settled from the snapshot's values, read once.
    expect(run.verify!.sentValues).toMatchObject({ looked: PROFILES, untold: 0 });
  }, 120_000);

  it('names exactly the drift there is: a value edited, a membership removed; image_url is never compared', async () => {
    const exp = await exportedAndSent(true);
    edit(sandbox(), 'external_id:u3', { first_name: 'Edited' }); // another tool wrote the attribute
    edit(sandbox(), 'external_id:u5', { [SEG]: ['A'] }); // in A and B: B removed in the dashboard
    edit(sandbox(), 'external_id:u7', { image_url: 'https://elsewhere.example.com/7.png' }); // not verifiable
    expect(sandbox().deleteUser(`alias:ci_customer_id:c${N + 2}`)).toBe(true); // in C only, deleted
    const run = await verify(exp.id);
    expect(run.verify!.counts).toMatchObject({
      inState: PROFILES,
      matched: PROFILES - 3,
      stale: 1,
      missing: 2,
      extra: 0,
      unknown: 0,
    });
    expect(await driftRows(run.id)).toEqual([
      'missing,external_id,u5,c5,B,',
      `missing,user_alias,c${N + 2},c${N + 2},C,`,
      'stale,external_id,u3,c3,A,first_name',
    ]);
    expect(run.verify!.bySegment).toMatchObject({
      A: { stale: 1, missing: 0 },
      B: { missing: 1 },
      C: { missing: 1 },
    });
  }, 120_000);
});
