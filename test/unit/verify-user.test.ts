// How a verification reads one of Braze's users: by the export's alias first (an alias user Braze
// later identified is still the export's), and cut down to what a comparison reads before any of it
// goes to a temp file.
import { describe, expect, it } from 'vitest';
import { BrazeObjectWriter, membershipNamesOf } from '../../shared/engine';
import { bytewiseFingerprint } from '../../shared/engine/hash/fingerprint';
import { ExportDefinitionSchema } from '../../shared/exports/schema';
import { BrazeUserReader, fieldsToExport, unexportableFields } from '../../shared/verify/braze-user';
import { classify } from '../../shared/verify/compare';
import { exportDefinition } from '../helpers/definition';

const def = exportDefinition({
  segments: ['Main', 'Other'],
  matching: { email: 'Email', brazeCustomerId: 'Ext', attributes: { city: 'City', first_name: 'Name' } },
});
const reader = new BrazeUserReader(def);
const label = def.matching.aliasLabel;

describe('a Braze user as a verification reads it', () => {
  it("is known by the export's alias before its external_id", () => {
    const u = { external_id: 'app-7', user_aliases: [{ alias_name: 'c7', alias_label: label }], braze_id: 'b7' };
    expect(reader.identitiesOf(u)).toEqual(['a:c7', 'e:app-7']);
    expect(reader.identityOf({ external_id: 'u1', user_aliases: [{ alias_name: 'x', alias_label: 'other' }] })).toBe('e:u1');
    expect(reader.identityOf({ braze_id: 'b1' })).toBe('b:b1');
  });

  it('keeps only identifiers, the membership and the mapped fields', () => {
    expect(reader.project({ custom_attributes: {} })).toEqual({});
    const u = {
      external_id: 'u1',
      braze_id: 'b1',
      user_aliases: [
        { alias_name: 'c1', alias_label: label },
        { alias_name: 'z', alias_label: 'other' },
      ],
      email: 'p1@example.com',
      first_name: 'Ann',
      last_name: 'Not mapped',
      custom_attributes: { city: 'Oslo', huge: 'x'.repeat(100_000), [membershipNamesOf(def)[0]!]: ['Main'] },
    };
    const p = reader.project(u);
    expect(JSON.stringify(p).length).toBeLessThan(400);
    expect(p).toMatchObject({ external_id: 'u1', user_aliases: [{ alias_name: 'c1', alias_label: label }], first_name: 'Ann' });
    expect(p.custom_attributes).toMatchObject({ city: 'Oslo' });
    expect(p).not.toHaveProperty('last_name');
    expect(p).not.toHaveProperty('braze_id');
    expect(reader.fingerprintsOf(p, 'a:c1')[0]).toBe(reader.fingerprintsOf(u, 'a:c1')[0]);
    expect(reader.segmentsOf(p)).toEqual([0]);
  });

  it('asks Braze only for standard fields it can export, and names the mapped ones it cannot', () => {
    const mapped = ExportDefinitionSchema.parse({
      ...def,
      matching: { ...def.matching, attributes: { first_name: 'Name', image_url: 'Photo', facebook: 'Fb', city: 'City' } },
    });
    expect(fieldsToExport(mapped)).toEqual(
      expect.arrayContaining(['external_id', 'user_aliases', 'braze_id', 'email', 'first_name', 'custom_attributes']),
    );
    expect(fieldsToExport(mapped)).not.toContain('image_url');
    expect(unexportableFields(mapped)).toEqual(['image_url', 'facebook']);
    expect(unexportableFields(def)).toEqual([]);
  });

  it('knows no fingerprint can match once what was sent held a value of a field Braze cannot export', () => {
    const mapped = new BrazeUserReader(
      ExportDefinitionSchema.parse({ ...def, matching: { ...def.matching, attributes: { city: 'City', image_url: 'Photo' } } }),
    );
    // heldFields bits follow reader.fields: email, then the attributes sorted (city, image_url).
    expect(mapped.fields).toEqual(['email', 'city', 'image_url']);
    expect(mapped.fingerprintCanMatch('7')).toBe(false); // image_url held
    expect(mapped.fingerprintCanMatch('4')).toBe(false);
    expect(mapped.fingerprintCanMatch('3')).toBe(true); // sent without image_url: Braze's values can match
    expect(mapped.fingerprintCanMatch('0')).toBe(true);
    expect(mapped.fingerprintCanMatch('*')).toBe(false); // written under other fields: unknown
    expect(reader.fingerprintCanMatch('*')).toBe(true); // nothing unexportable mapped
  });

  it('matches a user against a fingerprint an earlier release wrote (a byte a step), and finds the segments it sent', () => {
    const [membership] = membershipNamesOf(def);
    const u = { external_id: 'u1', email: 'a@example.com', custom_attributes: { city: 'Oslo', [membership!]: ['Main'] } };
    const writer = new BrazeObjectWriter(def);
    const written = (segments: number[]) => {
      const bytes = Buffer.from(writer.profile({ ...reader.profileOf(u, 'e:u1'), segments }));
      return bytewiseFingerprint(bytes, 0, bytes.length);
    };
    expect(reader.compare(u, 'e:u1', written([0]))).toEqual({ same: true });
    expect(reader.compare(u, 'e:u1', written([0, 1]))).toEqual({ same: false, sentSegments: [0, 1] });
    expect(reader.sentFingerprint({ ...reader.profileOf(u, 'e:u1'), segments: [0] }, written([0]))).toBe(written([0]));
  });

  it('with an older state line (fields unknown) and a field Braze cannot export mapped: the same object still matches, no search', () => {
    const withPhoto = ExportDefinitionSchema.parse({
      ...def,
      matching: { ...def.matching, attributes: { city: 'City', image_url: 'Photo' } },
    });
    const mapped = new BrazeUserReader(withPhoto);
    const [membership] = membershipNamesOf(withPhoto);
    const u = { external_id: 'u1', email: 'a@example.com', custom_attributes: { city: 'Oslo', [membership!]: ['Main'] } };
    const outcome = (fp: string, held: string) => {
      const seen: string[] = [];
      classify(
        mapped,
        { identity: 'e:u1', key: 'k1', fp, held },
        u,
        (kind) => seen.push(kind),
        () => seen.push('matched'),
        (s) => seen.push(`suspect:${s.kind}`),
      );
      return seen;
    };
    expect(outcome(mapped.fingerprintsOf(u, 'e:u1')[0], '*')).toEqual(['matched']);
    // Another object: settled from the snapshot, whatever the membership (no search over segment sets).
    expect(outcome('0000000000000000', '*')).toEqual(['suspect:stale']);
    // Known to have held image_url: straight to the snapshot, even when the fingerprint is the same.
    expect(outcome(mapped.fingerprintsOf(u, 'e:u1')[0], '7')).toEqual(['suspect:stale']);
  });

  it('tries sets of segments for a drifted profile only within its search budget, then leaves it to the snapshot', () => {
    const segments = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'];
    const tenSegments = ExportDefinitionSchema.parse({ ...def, segments });
    const [membership] = membershipNamesOf(tenSegments);
    // Room for one whole search of the 1,023 sets of ten segments, and three fingerprints more.
    const budgeted = new BrazeUserReader(tenSegments, 1023 + 3);
    const u = { external_id: 'u1', email: 'a@example.com', custom_attributes: { city: 'Oslo', [membership!]: ['A'] } };
    // Sent in A and B; Braze shows A only (B removed in the dashboard).
    const sent = budgeted.sentFingerprint({ ...budgeted.profileOf(u, 'e:u1'), segments: [0, 1] });
    // {A, B} is the third set tried: each search that finds it is charged 3, so two fit, not a third.
    expect(budgeted.compare(u, 'e:u1', sent)).toEqual({ same: false, sentSegments: [0, 1] });
    expect(budgeted.compare(u, 'e:u1', sent)).toEqual({ same: false, sentSegments: [0, 1] });
    expect(budgeted.compare(u, 'e:u1', sent)).toEqual({ same: false, sentSegments: null });
    // The exact comparison is never budgeted.
    expect(budgeted.compare(u, 'e:u1', budgeted.fingerprintsOf(u, 'e:u1')[0])).toEqual({ same: true });
  });
});
