// A verification run's drift, in two blobs beside the run's other reports: `drift.csv` for people
// (ids, kind, segments and fields — never a value: they are personal data — in cells safe to open in
// a spreadsheet) and `drift.jsonl`, the same rows for the repair to read back. Written through temp
// files, as a drift can be as large as the export.
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { ContainerClient } from '@azure/storage-blob';
import { csvField } from '../runs/rejected-report';
import type { DriftKind, DriftRow } from './drift';

const HEADER = 'kind,identifierType,identifier,profileId,segments,fields\n';
const IDENTIFIER_TYPES: Record<string, string> = { e: 'external_id', a: 'user_alias', b: 'braze_id' };

function csvLine(r: DriftRow): string {
  const type = IDENTIFIER_TYPES[r.identity.slice(0, 1)] ?? '';
  return `${[r.kind, type, r.identity.slice(2), r.key, r.segments.join('|'), r.fields.join('|')].map(csvField).join(',')}\n`;
}

/** Resolves when the file is ended, or has failed (its error is kept by the report's listener). */
const ended = (s: WriteStream) => new Promise<void>((resolve) => s.end(() => resolve()));

export class DriftReport {
  private readonly csv: WriteStream;
  private readonly jsonl: WriteStream;
  /** The first error of either file (the disk full, the temp folder gone): upload throws it. Without a listener it would end the process. */
  private failure: Error | undefined;
  private closed: Promise<void> | undefined;
  rows = 0;

  constructor(private readonly dir: string) {
    this.csv = createWriteStream(path.join(dir, 'drift.csv'));
    this.jsonl = createWriteStream(path.join(dir, 'drift.jsonl'));
    for (const file of [this.csv, this.jsonl]) file.on('error', (e) => (this.failure ??= e));
    this.csv.write(HEADER);
  }

  add(row: DriftRow): void {
    this.rows++;
    this.csv.write(csvLine(row));
    this.jsonl.write(`${JSON.stringify([row.kind, row.identity, row.key])}\n`);
  }

  /** Both files ended (once, however often it is asked). */
  private close(): Promise<void> {
    this.closed ??= Promise.all([ended(this.csv), ended(this.jsonl)]).then(() => undefined);
    return this.closed;
  }

  /** Uploads both files as `<folder>/drift.csv` and `<folder>/drift.jsonl`; returns the CSV's `container/name`. */
  async upload(container: ContainerClient, folder: string): Promise<string> {
    await this.close();
    if (this.failure) throw this.failure;
    await container
      .getBlockBlobClient(`${folder}/drift.csv`)
      .uploadFile(path.join(this.dir, 'drift.csv'), { blobHTTPHeaders: { blobContentType: 'text/csv; charset=utf-8' } });
    await container.getBlockBlobClient(`${folder}/drift.jsonl`).uploadFile(path.join(this.dir, 'drift.jsonl'));
    return `${container.containerName}/${folder}/drift.csv`;
  }

  /** Closes the files without uploading (the run ended before it compared, or failed): nothing of them is wanted. */
  async discard(): Promise<void> {
    await this.close().catch(() => undefined);
  }
}

/** Each row of a drift report written by DriftReport (its `drift.jsonl`, beside the CSV named `csvName`). */
export async function readDrift(
  container: ContainerClient,
  csvName: string,
  onRow: (kind: DriftKind, identity: string, key: string) => void,
): Promise<void> {
  const name = csvName.replace(/\.csv$/, '.jsonl');
  const response = await container.getBlobClient(name).download(0);
  for await (const line of createInterface({ input: response.readableStreamBody!, crlfDelay: Infinity })) {
    if (!line) continue;
    const [kind, identity, key] = JSON.parse(line) as [DriftKind, string, string];
    onRow(kind, identity, key);
  }
}
