// Finds the newest complete snapshot of an export's segments in CI's blob export folder.
// model.json is CI's commit marker: with it, its partitions are the snapshot (all must exist);
// without it, each segment's newest <yyyy>/<MM>/<dd>/<HHmm> folder is, once it has settled.
import { createHash } from 'node:crypto';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { mapAtMost } from '../at-most';
import { parseModelJson, partitionBlobName, type ModelEntity } from './model-json';
import { downloadWhole } from '../store/blob-bytes';
import { statusOf } from '../store/table-errors';

export interface Partition {
  blobName: string;
  /** true/false from model.json; undefined = detect (a first row equal to the column names). */
  hasHeader: boolean | undefined;
  delimiter: string;
  sizeBytes: number;
  etag?: string;
}

export interface SegmentTable {
  segment: string;
  /** Column names and CDM types from model.json; empty without model.json (the header row names them). */
  columns: { name: string; dataType?: string }[];
  partitions: Partition[];
}

export interface Snapshot {
  /** Changes whenever CI writes a new snapshot: what "newer than the last one exported" compares. */
  id: string;
  folder: string;
  modifiedTime: string;
  source: 'model.json' | 'timestamp-folders';
  tables: SegmentTable[];
  totalBytes: number;
}

/** Why there is nothing to export now. `incomplete` clears itself (try next tick); `invalid` needs a person. */
export class SnapshotUnavailable extends Error {
  constructor(
    readonly kind: 'incomplete' | 'invalid' | 'missing',
    message: string,
  ) {
    super(message);
    this.name = 'SnapshotUnavailable';
  }
}

/** The largest model.json read (by a run, and by source discovery). */
export const MAX_MODEL_JSON_BYTES = 32 * 1024 * 1024;
/** Partitions whose size and version are asked for at once (a CI export may list hundreds a segment). */
const PARTITIONS_AT_ONCE = 32;
/** Without model.json, a folder written to this recently may still be growing. */
export const SETTLE_MS = 60_000;

export interface SourceRef {
  container: string;
  folder: string;
}

export async function locateSnapshot(
  blobs: BlobServiceClient,
  source: SourceRef,
  segments: string[],
  now = new Date(),
): Promise<Snapshot> {
  const container = blobs.getContainerClient(source.container);
  const model = container.getBlockBlobClient(`${source.folder}/model.json`);
  // model.json in one GET; only without it is the container looked at (its absence has its own message).
  let read;
  try {
    read = await downloadWhole(
      model,
      {},
      {
        maxBytes: MAX_MODEL_JSON_BYTES,
        tooLarge: () => new SnapshotUnavailable('invalid', 'model.json is larger than 32 MB'),
      },
    );
  } catch (e) {
    // A body that broke off is resumed on the same version (If-Match): CI wrote model.json again meanwhile.
    if (statusOf(e) === 412)
      throw new SnapshotUnavailable('incomplete', 'model.json changed while it was read; CI may still be writing it');
    if (statusOf(e) !== 404) throw e;
    if (!(await container.exists()))
      throw new SnapshotUnavailable('missing', `Container "${source.container}" does not exist in the CI export storage account`);
    return fromTimestampFolders(container, source, segments, now);
  }
  const text = read.bytes.toString('utf8');
  let parsed;
  try {
    parsed = parseModelJson(text);
  } catch (e) {
    throw new SnapshotUnavailable(
      'incomplete',
      `model.json cannot be read (${(e as Error).message.slice(0, 200)}); CI may still be writing it`,
    );
  }
  const entities = segments.map((segment) => {
    const entity =
      parsed.entities.find((e) => e.name === segment) ??
      parsed.entities.find((e) => e.name.toLowerCase() === segment.toLowerCase());
    if (entity) return entity;
    // A CI export can hold hundreds of tables: name a few, so the message (kept on the run row) stays short.
    const names = parsed.entities.map((e) => e.name);
    const known =
      names.length === 0
        ? 'none'
        : names.length > 20
          ? `${names.slice(0, 20).join(', ')} and ${names.length - 20} more`
          : names.join(', ');
    throw new SnapshotUnavailable('invalid', `Segment "${segment}" is not in model.json (it has: ${known})`);
  });
  // Every segment's partitions are looked at together (one round trip, not one a segment), a bounded number at once.
  const listed = entities.flatMap((entity, t) => entity.partitions.map((p) => ({ t, p })));
  const found = await mapAtMost(listed, PARTITIONS_AT_ONCE, ({ t, p }) => partitionOf(container, source, segments[t]!, p));
  const tables: SegmentTable[] = entities.map((entity, t) => ({
    segment: segments[t]!,
    columns: entity.attributes.map((a) => ({ name: a.name, dataType: a.dataType })),
    partitions: found.filter((_, i) => listed[i]!.t === t),
  }));
  // Content identity: model.json and every partition it names, as written.
  const partitionTags = tables.flatMap((t) => t.partitions.map((p) => `${p.blobName}@${p.etag}`));
  return {
    id: `model.json:${read.etag}:${createHash('sha1').update(partitionTags.join('\n')).digest('base64url').slice(0, 16)}`,
    folder: source.folder,
    modifiedTime: parsed.modifiedTime ?? read.lastModified?.toISOString() ?? now.toISOString(),
    source: 'model.json',
    tables,
    totalBytes: tables.reduce((n, t) => n + t.partitions.reduce((m, p) => m + p.sizeBytes, 0), 0),
  };
}

type ModelPartition = ModelEntity['partitions'][number];

/** A partition model.json names, with its size and version (it must exist: CI writes model.json last). */
async function partitionOf(
  container: ContainerClient,
  source: SourceRef,
  segment: string,
  p: ModelPartition,
): Promise<Partition> {
  const blobName = partitionBlobName(p.location, source.container, source.folder);
  if (!blobName) {
    throw new SnapshotUnavailable(
      'invalid',
      `Partition ${p.name ?? p.location} of "${segment}" lies outside ${source.container}/${source.folder}`,
    );
  }
  const enc = p.fileFormatSettings?.encoding;
  if (enc && !/^utf-?8$/i.test(enc))
    throw new SnapshotUnavailable('invalid', `Partition ${blobName} is ${enc}; only UTF-8 is supported`);
  let size: number;
  let etag: string | undefined;
  try {
    const props = await container.getBlobClient(blobName).getProperties();
    size = props.contentLength ?? 0;
    etag = props.etag;
  } catch (e) {
    if (statusOf(e) === 404) {
      throw new SnapshotUnavailable(
        'incomplete',
        `Partition ${blobName} is listed in model.json but missing: the snapshot is still being written`,
      );
    }
    throw e;
  }
  return {
    blobName,
    hasHeader: p.fileFormatSettings?.columnHeaders,
    delimiter: p.fileFormatSettings?.delimiter ?? ',',
    sizeBytes: size,
    etag,
  };
}

const TIMESTAMP = /^(\d{4})\/(\d{2})\/(\d{2})\/(\d{4})\/([^/]+\.csv)$/i;

export interface TimestampFile {
  name: string;
  size: number;
  modified: number;
  etag?: string;
}

/** The newest `<yyyy>/<MM>/<dd>/<HHmm>` folder's CSV files right below `prefix` (in partition order), or null when there is none. */
export async function newestTimestampFolder(
  container: ContainerClient,
  prefix: string,
): Promise<{ stamp: string; files: TimestampFile[] } | null> {
  const byStamp = new Map<string, TimestampFile[]>();
  for await (const blob of container.listBlobsFlat({ prefix })) {
    const m = TIMESTAMP.exec(blob.name.slice(prefix.length));
    if (!m) continue;
    const stamp = `${m[1]}/${m[2]}/${m[3]}/${m[4]}`;
    const list = byStamp.get(stamp) ?? [];
    list.push({
      name: blob.name,
      size: blob.properties.contentLength ?? 0,
      modified: blob.properties.lastModified?.getTime() ?? 0,
      etag: blob.properties.etag,
    });
    byStamp.set(stamp, list);
  }
  const newest = [...byStamp.keys()].sort().pop();
  if (!newest) return null;
  return {
    stamp: newest,
    files: byStamp.get(newest)!.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true })),
  };
}

async function fromTimestampFolders(
  container: ContainerClient,
  source: SourceRef,
  segments: string[],
  now: Date,
): Promise<Snapshot> {
  const tables: SegmentTable[] = [];
  const stamps: string[] = [];
  let newestWrite = 0;
  for (const segment of segments) {
    const prefix = `${source.folder}/${segment}/`;
    const found = await newestTimestampFolder(container, prefix);
    if (!found)
      throw new SnapshotUnavailable(
        'missing',
        `No export of segment "${segment}" under ${source.container}/${prefix} (and no model.json)`,
      );
    const { stamp: newest, files } = found;
    newestWrite = Math.max(newestWrite, ...files.map((f) => f.modified));
    stamps.push(
      `${segment}@${newest}:${createHash('sha1')
        .update(files.map((f) => `${f.name}@${f.etag}`).join('\n'))
        .digest('base64url')
        .slice(0, 12)}`,
    );
    tables.push({
      segment,
      columns: [],
      partitions: files.map((f) => ({ blobName: f.name, hasHeader: true, delimiter: ',', sizeBytes: f.size })),
    });
  }
  if (now.getTime() - newestWrite < SETTLE_MS) {
    throw new SnapshotUnavailable(
      'incomplete',
      'The newest export folder was written less than a minute ago and has no model.json: it may still be being written',
    );
  }
  return {
    id: `folders:${stamps.join(',')}`,
    folder: source.folder,
    modifiedTime: new Date(newestWrite).toISOString(),
    source: 'timestamp-folders',
    tables,
    totalBytes: tables.reduce((n, t) => n + t.partitions.reduce((m, p) => m + p.sizeBytes, 0), 0),
  };
}
