// A verification's temp disk: Braze's users and the sync state spread over bucket files, then the
// profiles looked up in the snapshot and their rows. Each bucket's files are deleted once compared, so
// the snapshot's rows are written on a disk the spread no longer takes, and nothing is left behind.
// compareWithState itself, on Azurite and the Braze sandbox's own export of the proof segment.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { requestSegmentExport } from '../../shared/braze/user-export';
import { SyncStateStore } from '../../shared/engine';
import { services } from '../../shared/services';
import { CONTAINERS } from '../../shared/store/clients';
import { fieldsToExport } from '../../shared/verify/braze-user';
import { compareWithState } from '../../shared/verify/compare';
import { sentSnapshot } from '../../shared/verify/sent-snapshot';
import { useAzurite } from '../helpers/app';
import { defineProofSegment, PROOF } from '../helpers/verify';
import { MATCHING, PHOTO_COLUMNS, rowsWithPhoto } from '../helpers/ci-export';
import { mutableExport, runNow, SANDBOX_KEY, useSandbox } from '../helpers/engine';
import { until } from '../helpers/worker-runs';

useAzurite({ SYNC_BUCKET_TARGET_BYTES: '2048' }); // several buckets
const sandbox = useSandbox();
beforeEach(() => sandbox().reset());

const bucketFiles = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('bucket-'));

describe("a verification's temp files", () => {
  it('each bucket is deleted once compared: none is left when the snapshot is read, nor at the end', async () => {
    defineProofSegment(sandbox());
    // image_url (Braze cannot export it) mapped: every profile is looked up in the snapshot.
    const { exp } = await mutableExport(
      sandbox().url,
      [
        { segment: 'A', columns: PHOTO_COLUMNS, partitions: [rowsWithPhoto(300)] },
        { segment: 'B', columns: PHOTO_COLUMNS, partitions: [rowsWithPhoto(100, 251)] },
      ],
      { proofSegmentId: PROOF, matching: { ...MATCHING, attributes: { first_name: 'FirstName', image_url: 'Photo' } } },
    );
    const { run } = await runNow(exp.id);
    expect(run.status).toBe('succeeded');
    const def = (await services().exports.get(exp.id)).value;

    const dir = mkdtempSync(path.join(os.tmpdir(), 'verify-temp-files-'));
    try {
      // Braze's export of the proof segment, as a verification downloads it.
      const answer = await requestSegmentExport(sandbox().url, SANDBOX_KEY, {
        segment_id: PROOF,
        fields_to_export: fieldsToExport(def),
        output_format: 'zip',
      });
      let body: Response | undefined;
      await until(async () => (body = await fetch(answer.url!)).ok);
      const file = path.join(dir, 'export-0');
      writeFileSync(file, Buffer.from(await body!.arrayBuffer()));

      const state = new SyncStateStore(services().storage.appBlobs.getContainerClient(CONTAINERS.state), exp.id);
      expect((await state.readManifest())!.bucketCount).toBeGreaterThan(2);
      let spreadLeftWhenSnapshotRead: string[] | null = null;
      const compared = await compareWithState({
        definition: def,
        state,
        files: [file],
        dir,
        onDrift: () => undefined,
        sent: async () => {
          spreadLeftWhenSnapshotRead = bucketFiles(dir).filter((f) => !f.endsWith('.verify-suspects'));
          return sentSnapshot(services().storage, def, run.id);
        },
      });
      expect(compared.counts).toMatchObject({ inState: 350, inBraze: 350, matched: 350, stale: 0, missing: 0 });
      expect(compared.sentValues).toMatchObject({ looked: 350, untold: 0 });
      expect(spreadLeftWhenSnapshotRead).toEqual([]);
      expect(bucketFiles(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
