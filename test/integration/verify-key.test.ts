// Verification uses what the connection's key can do: a key Braze lets read profiles by id but not
// export segments (users.export.ids without users.export.segment, as its key check found) verifies
// a sample, and says why, instead of asking Braze for a segment export it would refuse.
import { describe, expect, it } from 'vitest';
import { services } from '../../shared/services';
import { DEFAULT_SAMPLE } from '../../shared/verify/service';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { createConnection, createExport, runNow, useSandbox } from '../helpers/engine';
import { verify } from '../helpers/verify';

// The key check runs here (most files skip it): it is what tells the app what the key can do.
useAzurite({ LOCAL_SKIP_KEY_CHECK: 'false' });
const IDS_ONLY = 'key-with-export-ids-only';
const sandbox = useSandbox({ keys: { [IDS_ONLY]: { usersTrack: true, segmentsList: true, usersExportIds: true } } });

describe('verification uses what the key can do', () => {
  it('a key without users.export.segment but with users.export.ids verifies a sample, and says why', async () => {
    const conn = await createConnection(sandbox().url, { apiKey: IDS_ONLY });
    expect(conn.keyCheck?.exportPermissions).toEqual({ 'users.export.segment': false, 'users.export.ids': true });
    const source = await writeCiExport(services().storage.ciBlobs, [{ segment: 'A', partitions: [rows(30)] }]);
    const exp = await createExport(conn.id, { source, segments: ['A'], matching: MATCHING, proofSegmentId: 'proof-1' });
    expect((await runNow(exp.id)).run.status).toBe('succeeded');

    const run = await verify(exp.id);
    expect(run.status).toBe('succeeded');
    expect(run.verify).toMatchObject({
      sample: DEFAULT_SAMPLE,
      sampledBecause: expect.stringMatching(/lacks users\.export\.segment/),
    });
    expect(run.verify!.confidence).toMatch(/^0 drift in 30 sampled profiles/);
    expect(sandbox().stats.requests).toBeGreaterThan(0);
  });
});
