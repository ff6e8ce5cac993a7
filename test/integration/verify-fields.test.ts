// Braze proof, what the drift report can name: the sync state keeps one fingerprint per profile, so a
// verification reads the snapshot the state was built from for the profiles it finds stale or missing
// — to name a stale profile's fields, count a profile missing from Braze altogether in its segments,
// and leave out of the comparison the fields Braze cannot export. On Azurite and the Braze sandbox.
import { describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { defineProofSegment, driftRows, edit, PROOF, SEG, useVerifyWorld, verify } from '../helpers/verify';
import { CONTAINER, MATCHING, PHOTO_COLUMNS, rows, rowsWithPhoto } from '../helpers/ci-export';
import { mutableExport, runNow } from '../helpers/engine';

const { sandbox } = useVerifyWorld();

/** c1..c6 in A, c5..c8 in B (odd: external ids u1, u3…; even: aliases c2, c4…). */
async function exportedAndSent(over: Record<string, unknown> = {}, tables?: Parameters<typeof mutableExport>[1]) {
  defineProofSegment(sandbox());
  const { exp } = await mutableExport(
    sandbox().url,
    tables ?? [
      { segment: 'A', partitions: [rows(6)] },
      { segment: 'B', partitions: [rows(4, { from: 5 })] },
    ],
    { proofSegmentId: PROOF, ...over },
  );
  expect((await runNow(exp.id)).run.status).toBe('succeeded');
  return exp;
}

describe('what a verification names', () => {
  it('a stale profile: the mapped fields whose value differs (no values), and the membership when it differs too', async () => {
    const exp = await exportedAndSent();
    edit(sandbox(), 'external_id:u1', { email: 'changed@example.org', first_name: 'Edited' }); // both values changed
    edit(sandbox(), 'external_id:u5', { first_name: 'Edited', [SEG]: ['A'] }); // a value changed, B removed
    edit(sandbox(), 'alias:ci_customer_id:c6', {}, ['first_name']); // a value removed
    const run = await verify(exp.id);
    expect(run.verify!.counts).toMatchObject({ matched: 5, stale: 3, missing: 0, extra: 0 });
    expect(await driftRows(run.id)).toEqual([
      `stale,external_id,u1,c1,A,email|first_name`,
      `stale,external_id,u5,c5,A,first_name|${SEG}`,
      'stale,user_alias,c6,c6,A|B,first_name',
    ]);
    expect(run.verify!.sentValues).toMatchObject({ looked: 3, untold: 0 });
    expect(run.verify!.summary).not.toMatch(/could not be named/);
  });

  it('a profile missing from Braze altogether counts in the segments the export gave it', async () => {
    const exp = await exportedAndSent();
    expect(sandbox().deleteUser('external_id:u5')).toBe(true); // in A and B
    expect(sandbox().deleteUser('alias:ci_customer_id:c8')).toBe(true); // in B
    const run = await verify(exp.id);
    expect(run.verify!.counts).toMatchObject({ matched: 6, missing: 2 });
    expect(run.verify!.bySegment).toEqual({
      A: { missing: 1, extra: 0, stale: 0, unknown: 0 },
      B: { missing: 2, extra: 0, stale: 0, unknown: 0 },
    });
    expect(await driftRows(run.id)).toEqual(['missing,external_id,u5,c5,A|B,', 'missing,user_alias,c8,c8,B,']);
  });

  it('when the snapshot is gone from CI, says the fields and segments could not be named, and why', async () => {
    const exp = await exportedAndSent();
    // CI's retention deletes the snapshot the export's last run sent.
    const ci = services().storage.ciBlobs.getContainerClient(CONTAINER);
    for await (const b of ci.listBlobsFlat({ prefix: exp.source.folder }))
      if (b.name.endsWith('.csv')) await ci.deleteBlob(b.name);
    edit(sandbox(), 'external_id:u1', { first_name: 'Edited' });
    edit(sandbox(), 'external_id:u3', {}, ['first_name']);
    expect(sandbox().deleteUser('alias:ci_customer_id:c2')).toBe(true);
    const run = await verify(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.verify!.counts).toMatchObject({ matched: 5, stale: 2, missing: 1 });
    // Only a field whose presence differs is named; the missing profile's segments are not known.
    expect(await driftRows(run.id)).toEqual([
      'missing,user_alias,c2,c2,,',
      'stale,external_id,u1,c1,A,',
      'stale,external_id,u3,c3,A,first_name',
    ]);
    expect(run.verify!.sentValues).toMatchObject({ looked: 3, untold: 3 });
    expect(run.verify!.sentValues!.why).toMatch(/no longer in CI's storage/);
    expect(run.verify!.summary).toMatch(
      /For 3 of the stale or missing profiles the fields or segments could not be named: .*no longer in CI's storage/,
    );
  });

  it('a mapped field Braze cannot export is left out of the comparison, and the report says it was not verified', async () => {
    const exp = await exportedAndSent(
      { matching: { ...MATCHING, attributes: { first_name: 'FirstName', image_url: 'Photo' } } },
      [
        { segment: 'A', columns: PHOTO_COLUMNS, partitions: [rowsWithPhoto(6)] },
        { segment: 'B', columns: PHOTO_COLUMNS, partitions: [rowsWithPhoto(4, 5)] },
      ],
    );
    expect(sandbox().profiles.get('external_id:u1')!.attributes.image_url).toBe('https://img.example.com/1.png');
    const clean = await verify(exp.id);
    expect(clean.status).toBe('succeeded');
    expect(clean.verify!.counts).toMatchObject({
      inState: 8,
      inBraze: 8,
      matched: 8,
      missing: 0,
      extra: 0,
      stale: 0,
      unknown: 0,
    });
    expect(clean.verify!.unverifiableFields).toEqual(['image_url']);
    expect(clean.verify!.summary).toMatch(/^No drift: .*Not verified: image_url \(Braze cannot export it/);
    // The rest is verified as ever: an edited first_name is stale (image_url never named), a removed membership missing.
    edit(sandbox(), 'external_id:u3', { first_name: 'Edited' });
    edit(sandbox(), 'external_id:u5', { [SEG]: ['A'] });
    const run = await verify(exp.id);
    expect(run.verify!.counts).toMatchObject({ matched: 6, stale: 1, missing: 1, extra: 0 });
    expect(await driftRows(run.id)).toEqual(['missing,external_id,u5,c5,B,', 'stale,external_id,u3,c3,A,first_name']);
  });
});
