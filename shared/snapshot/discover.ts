// Source discovery for the people who set up an export: which CI export folders the CI storage
// account holds (those with a model.json), and for one folder its segments with their columns,
// types, partition count and size, and a few masked sample values per column (column-samples.ts) —
// so data matching is picked, not typed. Bounded: a large account is sampled, never walked whole,
// only the start of one partition per segment is read, and the answer says when it was cut short.
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import Papa from 'papaparse';
import { AppError, fieldError, notFound } from '../errors';
import { downloadWhole } from '../store/blob-bytes';
import { statusOf } from '../store/table-errors';
import { readHead, samplesFrom, sampleColumns, type SampleSource } from './column-samples';
import { MAX_MODEL_JSON_BYTES, newestTimestampFolder } from './locate';
import { parseModelJson, partitionBlobName } from './model-json';

/**
 * Bounds on one discovery request: how far it walks, how many blobs it asks about (each a storage
 * request), and for how long; past any of them the answer is cut short and says `truncated: true`.
 */
export const DISCOVERY_LIMITS = {
  containers: 50,
  foldersPerLevel: 200,
  folders: 200,
  partitionsSized: 1000,
  probes: 2000,
  seconds: 20,
  /** Column samples: bytes read from the start of one partition per segment, for at most this many segments. */
  sampleBytes: 64 * 1024,
  sampledSegments: 100,
  /** How long one sample read may take. */
  sampleSeconds: 5,
};

/** The storage requests and time one discovery request may still spend. */
class Budget {
  private probes = 0;
  private readonly until = Date.now() + DISCOVERY_LIMITS.seconds * 1000;
  truncated = false;

  /** Takes one probe; false (and truncated) once the request has spent its probes or its time. */
  take(): boolean {
    if (this.probes >= DISCOVERY_LIMITS.probes || Date.now() > this.until) this.truncated = true;
    else this.probes++;
    return !this.truncated;
  }
}

/** 422: what is there cannot be read as a CI export (a malformed or oversized model.json). */
const unprocessable = (message: string) => new AppError(422, 'unprocessable', message);

/** 404 for a container the CI storage account does not have. */
async function existingContainer(blobs: BlobServiceClient, name: string): Promise<ContainerClient> {
  const container = blobs.getContainerClient(name);
  if (!(await container.exists())) throw notFound(`Container "${name}"`);
  return container;
}

export interface ExportFolder {
  container: string;
  /** What an export's `source.folder` takes: the folder holding model.json. */
  folder: string;
  modifiedTime: string | null;
}

export interface SegmentDescription {
  name: string;
  /** `samples`: up to three distinct values from the newest snapshot, masked as preview samples are. */
  columns: { name: string; dataType?: string; samples: unknown[] }[];
  partitions: number;
  /** Bytes of the newest snapshot's partitions (null when there were too many to size). */
  sizeBytes: number | null;
}

/** Sub-folder prefixes right below `prefix` (each ending in "/"), at most `limit`; a container gone meanwhile has none. */
async function subfolders(container: ContainerClient, prefix: string, limit: number, budget?: Budget): Promise<string[]> {
  const out: string[] = [];
  if (budget && !budget.take()) return out;
  try {
    for await (const item of container.listBlobsByHierarchy('/', { prefix })) {
      if (item.kind === 'prefix') out.push(item.name);
      if (out.length >= limit) break;
    }
  } catch (e) {
    if (statusOf(e) !== 404) throw e;
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
  const budget = new Budget();
  const containers: string[] = [];
  if (onlyContainer) containers.push((await existingContainer(blobs, onlyContainer)).containerName);
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
    for (const top of await subfolders(container, '', DISCOVERY_LIMITS.foldersPerLevel, budget)) {
      for (const candidate of [top, ...(await subfolders(container, top, DISCOVERY_LIMITS.foldersPerLevel, budget))]) {
        if (!budget.take()) return { folders, truncated: true };
        const folder = candidate.replace(/\/$/, '');
        const modified = await modelJsonTime(container, folder);
        if (modified !== undefined) folders.push({ container: name, folder, modifiedTime: modified });
        if (folders.length >= DISCOVERY_LIMITS.folders) return { folders, truncated: true };
      }
    }
  }
  return { folders, truncated: truncated || budget.truncated };
}

/** A folder's segments: from model.json, or, without one, each segment's newest CSV by its header row. */
export async function describeExportFolder(
  blobs: BlobServiceClient,
  containerName: string,
  folder: string,
  options: { samples: boolean } = { samples: true },
): Promise<{ source: 'model.json' | 'header rows'; segments: SegmentDescription[]; truncated: boolean }> {
  const container = await existingContainer(blobs, containerName);
  const budget = new Budget();
  const text = await modelJsonText(container, folder);
  if (text === null) {
    const segments = await fromHeaderRows(container, folder, budget, options.samples);
    return { source: 'header rows', segments, truncated: budget.truncated };
  }
  let model;
  try {
    model = parseModelJson(text);
  } catch (e) {
    throw unprocessable(
      `${folder}/model.json cannot be read as a CDM model (${(e as Error).message.split('\n')[0]!.slice(0, 200)})`,
    );
  }
  let sized = 0;
  const segments: (Omit<SegmentDescription, 'columns'> & { columns: SampleSource['columns'] })[] = [];
  const toSample: (SampleSource | null)[] = [];
  for (const entity of model.entities) {
    let sizeBytes: number | null = 0;
    // The partition to sample: the first with rows (the first listed when sizes are unknown).
    let sample: (typeof entity.partitions)[number] | null = null;
    for (const p of entity.partitions) {
      const name = partitionBlobName(p.location, containerName, folder);
      if (!name || sized++ >= DISCOVERY_LIMITS.partitionsSized || !budget.take()) {
        sizeBytes = null;
        if (name) sample ??= p;
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
      if (size > 0) sample ??= p;
    }
    const columns = entity.attributes.map((a) => ({ name: a.name, dataType: a.dataType }));
    const format = sample?.fileFormatSettings;
    const blobName = sample && partitionBlobName(sample.location, containerName, folder);
    toSample.push(blobName ? { blobName, hasHeader: format?.columnHeaders, delimiter: format?.delimiter ?? ',', columns } : null);
    segments.push({ name: entity.name, columns, partitions: entity.partitions.length, sizeBytes });
  }
  const samples = options.samples ? await sampleSegments(container, toSample, budget) : [];
  return {
    source: 'model.json',
    segments: segments.map((s, i) => ({ ...s, columns: s.columns.map((c, j) => ({ ...c, samples: samples[i]?.[j] ?? [] })) })),
    truncated: budget.truncated || sized > DISCOVERY_LIMITS.partitionsSized,
  };
}

/** Reads samples a few segments at a time, each read taking a probe; past the segment cap or the budget there are none. */
async function sampleSegments(
  container: ContainerClient,
  sources: (SampleSource | null)[],
  budget: Budget,
): Promise<(unknown[][] | null)[]> {
  const out: (unknown[][] | null)[] = sources.map(() => null);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < sources.length; i = next++) {
      const source = sources[i];
      if (!source) continue;
      if (i >= DISCOVERY_LIMITS.sampledSegments || !budget.take()) {
        budget.truncated = true;
        return;
      }
      out[i] = await sampleColumns(container, source, DISCOVERY_LIMITS.sampleBytes, DISCOVERY_LIMITS.sampleSeconds * 1000);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return out;
}

/** The folder's model.json (null when there is none), under the same size cap as a run's reader. */
async function modelJsonText(container: ContainerClient, folder: string): Promise<string | null> {
  const blob = container.getBlobClient(`${folder}/model.json`);
  try {
    const tooLarge = () => unprocessable(`${folder}/model.json is larger than ${MAX_MODEL_JSON_BYTES / 1024 / 1024} MB`);
    return (await downloadWhole(blob, {}, { maxBytes: MAX_MODEL_JSON_BYTES, tooLarge })).bytes.toString('utf8');
  } catch (e) {
    if (statusOf(e) === 404) return null;
    // A name the storage service refuses (control characters…): the caller's input, not our failure.
    if (statusOf(e) === 400) throw fieldError('folder', 'is not a blob path the storage account accepts');
    // A body that broke off is resumed on the same version (If-Match): CI wrote it again meanwhile.
    if (statusOf(e) === 412)
      throw new AppError(409, 'conflict', `${folder}/model.json changed while it was read (CI is writing it); try again`);
    throw e;
  }
}

async function fromHeaderRows(
  container: ContainerClient,
  folder: string,
  budget: Budget,
  withSamples: boolean,
): Promise<SegmentDescription[]> {
  const segments: SegmentDescription[] = [];
  for (const prefix of await subfolders(container, `${folder}/`, DISCOVERY_LIMITS.foldersPerLevel, budget)) {
    // Each segment costs a few listings and a read: one probe each, against the request's budget;
    // its read counts against the sampled segments' cap, as model.json's sample reads do.
    if (segments.length >= DISCOVERY_LIMITS.sampledSegments) {
      budget.truncated = true;
      break;
    }
    if (!budget.take()) break;
    const found = await newestTimestampFolder(container, prefix);
    if (!found) continue;
    const { files } = found;
    // The first line of the first partition names the columns; a partition that cannot be read
    // (gone, slower than a sample read may take) names none.
    const first = files[0]!;
    const head =
      first.size === 0
        ? { head: Buffer.alloc(0), whole: true }
        : await readHead(container, first.name, DISCOVERY_LIMITS.sampleBytes, DISCOVERY_LIMITS.sampleSeconds * 1000).catch(
            () => ({ head: Buffer.alloc(0), whole: true }),
          );
    const parsed = Papa.parse<string[]>(head.head.toString('utf8').replace(/^\uFEFF/, ''), { preview: 1 });
    const columns = (parsed.data[0] ?? []).map((name) => ({ name }));
    // The same bounded read gives the samples: the rows below the header, split as the header is.
    const source = { hasHeader: true, delimiter: parsed.meta.delimiter || ',', columns };
    const samples = withSamples ? samplesFrom(head.head, head.whole, source) : [];
    segments.push({
      name: prefix.slice(folder.length + 1).replace(/\/$/, ''),
      columns: columns.map((c, i) => ({ ...c, samples: samples[i] ?? [] })),
      partitions: files.length,
      sizeBytes: files.reduce((n, f) => n + f.size, 0),
    });
  }
  return segments;
}
