import { beforeAll, describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { expectedBrazeProfiles, uploadSampleExport } from '../../scripts/sample-data';
import { useAzurite } from '../helpers/app';
import { createConnection, createExport, normalizeProfiles, runNow, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();

beforeAll(async () => {
  await uploadSampleExport(services().storage.ciBlobs);
});

describe('export engine on the bundled sample', () => {
  it('brings Braze in step with the snapshot, counting every row and profile', async () => {
    const conn = await createConnection(sandbox().url);
    const exp = await createExport(conn.id);
    const { run } = await runNow(exp.id);
    expect(run.errors).toEqual([]);
    expect(run.status).toBe('succeeded');
    const c = run.counts!;
    expect(c.profiles).toBe(c.sent + c.unchanged + c.rejected + c.failed);
    expect(c.rejected).toBe(3);
    expect(c.sent).toBe(300);
    expect(normalizeProfiles(sandbox().profileList())).toEqual(normalizeProfiles(expectedBrazeProfiles()));
    expect(run.omittedAttributes).toEqual({ email: 1, phone: 1 });
    expect(run.rejectedReport).toMatch(/rejected\.csv$/);
  });
});
