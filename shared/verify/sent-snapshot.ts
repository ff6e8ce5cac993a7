// What the export last sent, read back from CI: the sync state keeps one fingerprint per profile, not
// its values, so to say which fields of a stale profile differ (and which segments a profile missing
// from Braze was in) a verification reads the snapshot the state was built from — the one the
// export's last run pinned — and maps the rows of just those profiles the way a run maps them.
import type { Readable } from 'node:stream';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import type { ExportDefinition } from '../exports/schema';
import { fnv1a32, RowMapper, type PartialProfile } from '../engine';
import { runFolder } from '../runs/pinned-snapshot';
import { readCsv, sameName } from '../snapshot/csv-rows';
import type { Snapshot } from '../snapshot/locate';
import { CONTAINERS } from '../store/clients';
import { statusOf } from '../store/table-errors';

/** The snapshot the state was built from and where its partitions are; or why there is none to read. */
export type SentSnapshot = { snapshot: Snapshot; container: ContainerClient; run: string } | { why: string };

/** A partition of the snapshot is gone (CI's retention deleted it): nothing of it can be read. */
export class SnapshotGone extends Error {}

/** The snapshot the export's last run (`stateRun`, recorded as `verify.stateRun`) pinned. */
export async function sentSnapshot(
  blobs: { appBlobs: BlobServiceClient; ciBlobs: BlobServiceClient },
  def: ExportDefinition,
  stateRun: string | null,
): Promise<SentSnapshot> {
  if (!stateRun) return { why: 'the export has no last run to read the snapshot of' };
  const pin = blobs.appBlobs.getContainerClient(CONTAINERS.reports).getBlobClient(`${runFolder(stateRun)}/snapshot.json`);
  try {
    const snapshot = JSON.parse((await pin.downloadToBuffer()).toString('utf8')) as Snapshot;
    return { snapshot, container: blobs.ciBlobs.getContainerClient(def.source.container), run: stateRun };
  } catch (e) {
    if (statusOf(e) === 404) return { why: `the export's last run (${stateRun}) recorded no snapshot` };
    throw e;
  }
}

/**
 * Streams every partition of the snapshot once and hands on, mapped as a run maps them, the rows whose
 * profile key's hash `wanted` accepts (rows a run would refuse are skipped). Throws SnapshotGone when a
 * partition is not there any more.
 */
export async function readSentRows(
  sent: Extract<SentSnapshot, { snapshot: Snapshot }>,
  def: ExportDefinition,
  wanted: (keyHash: number) => boolean,
  onRow: (row: PartialProfile) => void,
  /** Before each partition: throws to stop reading. */
  beforePartition: () => Promise<void> = async () => undefined,
): Promise<void> {
  const { snapshot } = sent;
  for (const table of snapshot.tables) {
    const seg = def.segments.indexOf(table.segment);
    if (seg < 0) continue;
    for (const partition of table.partitions) {
      await beforePartition();
      const download = await sent.container
        .getBlobClient(partition.blobName)
        .download()
        .catch((e: unknown) => {
          if (statusOf(e) === 404)
            throw new SnapshotGone(
              `the snapshot of ${snapshot.modifiedTime} that the export's last run (${sent.run}) sent is no longer in CI's storage ` +
                `(partition ${partition.blobName} is gone: CI keeps snapshots for a limited time)`,
            );
          throw e;
        });
      const body = download.readableStreamBody as Readable;
      body.setEncoding('utf8');
      // As a run: model.json's columns, the file's own header winning for their order (model.json still types them).
      let mapper = table.columns.length ? new RowMapper(def, seg, table.columns) : null;
      const typeOf = (name: string) => table.columns.find((c) => sameName(c.name, name))?.dataType;
      const options = {
        delimiter: partition.delimiter,
        hasHeader: partition.hasHeader,
        columns: table.columns.map((c) => c.name),
      };
      await readCsv(body, options, (ev) => {
        if (ev.kind === 'header')
          mapper = new RowMapper(
            def,
            seg,
            ev.columns.map((name) => ({ name, dataType: typeOf(name) })),
          );
        if (ev.kind !== 'row' || !mapper) return;
        const key = mapper.keyOf(ev.fields);
        if (key === null || !wanted(fnv1a32(key))) return;
        const mapped = mapper.map(ev.fields);
        if (mapped.ok) onRow(mapped.partial);
      });
    }
  }
}
