// Preview samples hide every value the export maps from CI — identifiers, e-mail, phone, names,
// custom attributes, under whatever key — keeping each value's type and length; the membership
// (CI segment names) shows as it is. On Azurite, with the preview's dry run.
import { describe, expect, it } from 'vitest';
import { exportPreview } from '../../functions/exportPreview';
import { maskObject } from '../../shared/preview/data-points';
import { services } from '../../shared/services';
import { call, useAzurite } from '../helpers/app';
import { writeCiExport } from '../helpers/ci-export';
import { createConnection, createExport, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();

const COLUMNS = ['CustomerId', 'BrazeUserId', 'PrimaryEmail', 'FirstName', 'Mobile', 'Score', 'Vip'].map((name) => ({
  name,
  dataType: name === 'Score' ? 'int64' : name === 'Vip' ? 'boolean' : 'string',
}));
const ROWS = [
  'cust-1,ext-0001,jane.doe@example.com,Jane,+4790012345,1234,true',
  'cust-2,,john@example.org,Johnathan,+4790099999,7,false',
];

describe('preview samples', () => {
  it('mask every mapped value, keeping type and length; membership stays readable', async () => {
    const app = services();
    const source = await writeCiExport(app.storage.ciBlobs, [
      { segment: 'Gold', columns: COLUMNS, partitions: [ROWS.join('\n') + '\n'] },
    ]);
    const conn = await createConnection(sandbox().url);
    const exp = await createExport(conn.id, {
      source,
      segments: ['Gold'],
      matching: {
        profileId: 'CustomerId',
        email: 'PrimaryEmail',
        brazeCustomerId: 'BrazeUserId',
        attributes: { first_name: 'FirstName', mobile_number: 'Mobile', score: 'Score', vip: 'Vip' },
      },
    });
    const res = await call(exportPreview, { method: 'POST', path: 'x', params: { id: exp.id }, body: {} });
    expect(res.status).toBe(200);
    const samples = res.body.samples as Record<string, any>[];
    expect(samples).toHaveLength(2);
    const text = JSON.stringify(samples);
    for (const raw of ['ext-0001', 'cust-2', 'jane.doe', 'john@', 'Jane', 'Johnathan', '90012345', '90099999', '1234'])
      expect(text).not.toContain(raw);
    const jane = samples.find((s) => s.external_id)!;
    expect(jane).toMatchObject({
      external_id: 'e•••••••',
      email: 'j•••••••@example.com',
      first_name: 'J•••',
      mobile_number: '+••••••••••',
      score: 9999,
      vip: true,
      '0000-0000-0000': ['Gold'],
    });
    const john = samples.find((s) => s.user_alias)!;
    expect(john.user_alias).toEqual({ alias_name: 'c•••••', alias_label: 'ci_customer_id' });
    expect(john._update_existing_only).toBe(false);
    expect(john.first_name).toHaveLength('Johnathan'.length);
  });

  it('maskObject leaves only the kept keys and the update flag as they are', () => {
    expect(maskObject({ a: 'secret', n: 12.5, m: ['A'], _update_existing_only: true, x: null }, new Set(['m']))).toEqual({
      a: 's•••••',
      n: 99.9,
      m: ['A'],
      _update_existing_only: true,
      x: null,
    });
  });
});
