// A few sample values per column for the people who pick data matching, read from the start of one
// partition of the newest snapshot — a bounded byte range, never the whole file — typed as a run
// types them and masked as the preview masks its samples, so discovery shows no more of the data
// than a preview does.
import type { ContainerClient } from '@azure/storage-blob';
import Papa from 'papaparse';
import { maskSample } from '../preview/data-points';
import { coerce } from './cdm-types';
import { isHeaderRecord, sameName } from './csv-rows';

export const SAMPLES_PER_COLUMN = 3;

export interface SampleSource {
  blobName: string;
  hasHeader: boolean | undefined;
  delimiter: string;
  columns: { name: string; dataType?: string }[];
}

/**
 * Up to three distinct masked values per column (in column order) from the start of a partition.
 * `whole`: `head` is the whole file; otherwise its last, cut record is left out.
 */
export function samplesFrom(head: Buffer, whole: boolean, source: Omit<SampleSource, 'blobName'>): unknown[][] {
  const names = source.columns.map((c) => c.name);
  const samples = names.map(() => new Map<string, unknown>());
  const text = head
    .subarray(0, whole ? head.length : head.lastIndexOf(0x0a) + 1)
    .toString('utf8')
    .replace(/^\uFEFF/, '');
  // Errors are numbered by row, so empty lines are skipped here rather than by Papa Parse.
  const parsed = Papa.parse<string[]>(text, { delimiter: source.delimiter, quoteChar: '"', escapeChar: '"' });
  const bad = new Set(parsed.errors.map((e) => e.row));
  // Which model.json column each field is: model.json's order, until a header says otherwise.
  let order = names.map((_, c) => c);
  let first = true;
  parsed.data.forEach((fields, row) => {
    if (fields.length === 1 && fields[0] === '') return;
    if (first && isHeaderRecord(fields, { ...source, columns: names })) {
      // The file's own header wins for column order, as in a run; model.json still gives the types.
      order = fields.map((name) => names.findIndex((n) => sameName(n, name)));
      first = false;
      return;
    }
    first = false;
    // A record the run would reject (malformed, another width) is no sample of a column.
    if (bad.has(row) || fields.length !== order.length) return;
    fields.forEach((raw, f) => {
      const c = order[f]!;
      const seen = samples[c];
      if (!seen || seen.size >= SAMPLES_PER_COLUMN || raw.trim() === '') return;
      const typed = coerce(raw, source.columns[c]!.dataType);
      const masked = maskSample(typed.ok ? typed.value : raw.trim());
      seen.set(JSON.stringify(masked), masked);
    });
  });
  return samples.map((m) => [...m.values()]);
}

/**
 * The first `maxBytes` of a blob, read within `timeoutMs` (throws when it cannot be); `whole`: that is
 * the whole blob.
 */
export async function readHead(
  container: ContainerClient,
  blobName: string,
  maxBytes: number,
  timeoutMs: number,
): Promise<{ head: Buffer; whole: boolean }> {
  const res = await container.getBlobClient(blobName).download(0, maxBytes, { abortSignal: AbortSignal.timeout(timeoutMs) });
  const chunks: Buffer[] = [];
  let read = 0;
  for await (const chunk of res.readableStreamBody!) {
    chunks.push(chunk as Buffer);
    read += (chunk as Buffer).length;
    if (read >= maxBytes) break;
  }
  const total = Number(/\/(\d+)$/.exec(res.contentRange ?? '')?.[1] ?? res.contentLength ?? read);
  return { head: Buffer.concat(chunks).subarray(0, maxBytes), whole: read >= total };
}

/**
 * Samples from the first `maxBytes` of a partition, read within `timeoutMs`. A partition that cannot
 * be read (gone, slow) gives no samples: the columns are still worth listing without them.
 */
export async function sampleColumns(
  container: ContainerClient,
  source: SampleSource,
  maxBytes: number,
  timeoutMs: number,
): Promise<unknown[][]> {
  try {
    const { head, whole } = await readHead(container, source.blobName, maxBytes, timeoutMs);
    return samplesFrom(head, whole, source);
  } catch {
    return source.columns.map(() => []);
  }
}
