// The parts of a CDM model.json that say what a CI export snapshot holds.
import { z } from 'zod';

const CsvFormat = z
  .looseObject({
    columnHeaders: z.boolean().optional(),
    delimiter: z.string().min(1).max(1).optional(),
    encoding: z.string().optional(),
  })
  .optional();

const Entity = z.looseObject({
  name: z.string().min(1),
  attributes: z.array(z.looseObject({ name: z.string().min(1), dataType: z.string().optional() })).default([]),
  partitions: z
    .array(z.looseObject({ name: z.string().optional(), location: z.string().min(1), fileFormatSettings: CsvFormat }))
    .default([]),
});

export const ModelJson = z.looseObject({
  name: z.string().optional(),
  modifiedTime: z.string().optional(),
  entities: z.array(z.looseObject({ $type: z.string().optional(), name: z.string().optional() })).default([]),
});

export type ModelEntity = z.output<typeof Entity>;

export function parseModelJson(text: string): { modifiedTime?: string; entities: ModelEntity[] } {
  const raw = JSON.parse(text.replace(/^\uFEFF/, '')) as unknown;
  const model = ModelJson.parse(raw);
  // Reference entities and other kinds are not segment tables: keep the ones that parse as tables.
  const entities = model.entities.flatMap((e) => {
    const parsed = Entity.safeParse(e);
    return parsed.success && (e.$type === undefined || e.$type === 'LocalEntity') ? [parsed.data] : [];
  });
  return { modifiedTime: model.modifiedTime, entities };
}

/**
 * Maps a partition's absolute URL onto a blob name in the configured container — never calling the
 * host it names — and insists it lies inside the export's folder.
 */
export function partitionBlobName(location: string, container: string, folder: string): string | null {
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(location).pathname);
  } catch {
    return null;
  }
  const parts = pathname.split('/').filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    if (parts[i]!.toLowerCase() !== container.toLowerCase()) continue;
    const name = parts.slice(i + 1).join('/');
    if (name.startsWith(`${folder}/`) && !parts.slice(i + 1).some((p) => p === '..' || p === '.')) return name;
  }
  return null;
}
