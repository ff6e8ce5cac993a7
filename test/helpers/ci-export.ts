// Writes a small CI-layout export (model.json + timestamped CSV partitions) for a test.
import type { BlobServiceClient } from '@azure/storage-blob';

export interface TableSpec {
  segment: string;
  columns?: { name: string; dataType?: string }[];
  /** Each partition's raw CSV text (null = listed in model.json but never written). */
  partitions: (string | null)[];
  columnHeaders?: boolean;
}

export const CONTAINER = 'ci-exports';
export const COLUMNS = [
  { name: 'CustomerId', dataType: 'string' },
  { name: 'BrazeUserId', dataType: 'string' },
  { name: 'PrimaryEmail', dataType: 'string' },
  { name: 'FirstName', dataType: 'string' },
];

export const MATCHING = {
  profileId: 'CustomerId',
  email: 'PrimaryEmail',
  brazeCustomerId: 'BrazeUserId',
  attributes: { first_name: 'FirstName' },
};

let n = 0;

export async function writeCiExport(
  blobs: BlobServiceClient,
  tables: TableSpec[],
  options: { folder?: string; stamp?: string; withModel?: boolean } = {},
): Promise<{ container: string; folder: string }> {
  const folder = options.folder ?? `CustomerInsights_test/Export${++n}`;
  const stamp = options.stamp ?? '2026/11/20/0615';
  const c = blobs.getContainerClient(CONTAINER);
  await c.createIfNotExists();
  const entities = [];
  for (const t of tables) {
    const partitions = [];
    for (let i = 0; i < t.partitions.length; i++) {
      const name = `${folder}/${t.segment}/${stamp}/${t.segment}_${i + 1}.csv`;
      const body = t.partitions[i];
      if (body !== null && body !== undefined) await c.getBlockBlobClient(name).upload(body, Buffer.byteLength(body));
      partitions.push({
        name: `${t.segment}_${i + 1}`,
        location: `https://account.blob.core.windows.net/${CONTAINER}/${name}`,
        fileFormatSettings: { $type: 'CsvFormatSettings', columnHeaders: t.columnHeaders ?? false, delimiter: ',' },
      });
    }
    entities.push({ $type: 'LocalEntity', name: t.segment, attributes: t.columns ?? COLUMNS, partitions });
  }
  if (options.withModel !== false) {
    const model = JSON.stringify({ name: 'Export', version: '1.0', modifiedTime: new Date().toISOString(), entities });
    await c.getBlockBlobClient(`${folder}/model.json`).upload(model, Buffer.byteLength(model));
  }
  return { container: CONTAINER, folder };
}

/** Rows for `count` profiles: c1..cN, external ids for odd ones, alias for even ones. */
export function rows(count: number, options: { from?: number; name?: (i: number) => string } = {}): string {
  const lines: string[] = [];
  for (let i = options.from ?? 1; i < (options.from ?? 1) + count; i++) {
    lines.push([`c${i}`, i % 2 ? `u${i}` : '', `p${i}@example.com`, options.name?.(i) ?? `Name${i}`].join(','));
  }
  return lines.join('\n') + '\n';
}

/** The columns with a Photo column, for an export that maps image_url (a field Braze cannot export). */
export const PHOTO_COLUMNS = [...COLUMNS, { name: 'Photo', dataType: 'string' }];

/** rows() with a Photo URL at the end of each row (PHOTO_COLUMNS). */
export const rowsWithPhoto = (count: number, from = 1): string =>
  rows(count, { from })
    .trim()
    .split('\n')
    .map((line, i) => `${line},https://img.example.com/${from + i}.png`)
    .join('\n') + '\n';
