// Source discovery for the people who set up an export: which CI export folders the CI storage
// account holds (those with a model.json), and for one folder its segments with their columns,
// types, partition count and size — so data matching is picked, not typed. Bounded: a large
// account is sampled, never walked whole, and the answer says when it was cut short.
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import Papa from 'papaparse';
import { statusOf } from '../store/table-errors';
import { newestTimestampFolder } from './locate';
import { parseModelJson, partitionBlobName } from './model-json';

export const DISCOVERY_LIMITS = { containers: 50, foldersPerLevel: 200, folders: 200, partitionsSized: 1000 };

export interface ExportFolder {
  container: string;
  /** What an export's `source.folder` takes: the folder holding model.json. */
  folder: string;
  modifiedTime: string | null;
}

export interface SegmentDescription {
  name: string;
  columns: { name: string; dataType?: string }[];
  partitions: number;
  /** Bytes of the newest snapshot's partitions (null when there were too many to size). */
  sizeBytes: number | null;
}

/** Sub-folder prefixes right below `prefix` (each ending in "/"), at most `limit`. */
async function subfolders(container: ContainerClient, prefix: string, limit: number): Promise<string[]> {
  const out: string[] = [];
  for await (const item of container.listBlobsByHierarchy('/', { prefix })) {
    if (item.kind === 'prefix') out.push(item.name);
    if (out.length >= limit) break;
  }
  return out;
}

async function modelJsonTime(container: ContainerClient, folder: string): Promise<string | null | undefined> {
  try {
    const props = await container.getBlobClient(`${folder}/model.json`).getProperties();
    return props.lastModified?.toISOString() ?? null;
  } catch (e) {
    if (statusOf(e) === 404) return undefined;
    throw e;
  }
}

/** CI export folders (CustomerInsights_<id>/<ExportName>, or one level up) that hold a model.json. */
export async function listExportFolders(
  blobs: BlobServiceClient,
  onlyContainer?: string,
): Promise<{ folders: ExportFolder[]; truncated: boolean }> {
  const folders: ExportFolder[] = [];
  let truncated = false;
  const containers: string[] = [];
  if (onlyContainer) containers.push(onlyContainer);
  else {
    for await (const c of blobs.listContainers()) {
      if (containers.length >= DISCOVERY_LIMITS.containers) {
        truncated = true;
        break;
      }
      containers.push(c.name);
    }
  }
  for (const name of containers) {
    const container = blobs.getContainerClient(name);
    for (const top of await subfolders(container, '', DISCOVERY_LIMITS.foldersPerLevel)) {
      for (const candidate of [top, ...(await subfolders(container, top, DISCOVERY_LIMITS.foldersPerLevel))]) {
        const folder = candidate.replace(/\/$/, '');
        const modified = await modelJsonTime(container, folder);
        if (modified !== undefined) folders.push({ container: name, folder, modifiedTime: modified });
        if (folders.length >= DISCOVERY_LIMITS.folders) return { folders, truncated: true };
      }
    }
  }
  return { folders, truncated };
}

/** A folder's segments: from model.json, or, without one, each segment's newest CSV by its header row. */
export async function describeExportFolder(
  blobs: BlobServiceClient,
  containerName: string,
  folder: string,
): Promise<{ source: 'model.json' | 'header rows'; segments: SegmentDescription[] }> {
  const container = blobs.getContainerClient(containerName);
  let text: string | null = null;
  try {
    text = (await container.getBlobClient(`${folder}/model.json`).downloadToBuffer()).toString('utf8');
  } catch (e) {
    if (statusOf(e) !== 404) throw e;
  }
  if (text === null) return { source: 'header rows', segments: await fromHeaderRows(container, folder) };
  let sized = 0;
  const segments: SegmentDescription[] = [];
  for (const entity of parseModelJson(text).entities) {
    let sizeBytes: number | null = 0;
    for (const p of entity.partitions) {
      const name = partitionBlobName(p.location, containerName, folder);
      if (!name || sized++ >= DISCOVERY_LIMITS.partitionsSized) {
        sizeBytes = null;
        continue;
      }
      const size = await container
        .getBlobClient(name)
        .getProperties()
        .then(
          (r) => r.contentLength ?? 0,
          () => 0,
        );
      if (sizeBytes !== null) sizeBytes += size;
    }
    segments.push({
      name: entity.name,
      columns: entity.attributes.map((a) => ({ name: a.name, dataType: a.dataType })),
      partitions: entity.partitions.length,
      sizeBytes,
    });
  }
  return { source: 'model.json', segments };
}

async function fromHeaderRows(container: ContainerClient, folder: string): Promise<SegmentDescription[]> {
  const segments: SegmentDescription[] = [];
  for (const prefix of await subfolders(container, `${folder}/`, DISCOVERY_LIMITS.foldersPerLevel)) {
    const found = await newestTimestampFolder(container, prefix);
    if (!found) continue;
    const { files } = found;
    // The first line of the first partition names the columns.
    const first = files[0]!;
    const head =
      first.size === 0
        ? ''
        : (await container.getBlobClient(first.name).downloadToBuffer(0, Math.min(first.size, 64 * 1024))).toString('utf8');
    const firstLine = Papa.parse<string[]>(head, { preview: 1 }).data[0] ?? [];
    segments.push({
      name: prefix.slice(folder.length + 1).replace(/\/$/, ''),
      columns: firstLine.map((name) => ({ name })),
      partitions: files.length,
      sizeBytes: files.reduce((n, f) => n + f.size, 0),
    });
  }
  return segments;
}
