// A record kept as JSON in a table row, spread over as many string properties as it needs: Table
// Storage takes at most 64 KiB per property (32K UTF-16 characters) and 1 MiB per entity, and a
// record the API accepted must never be refused by storage.

/** Characters per property, under the 32,768 a 64 KiB UTF-16 string holds. */
const CHUNK_CHARS = 30_000;
/** Properties at most (≈ 480,000 characters), well within an entity's 1 MiB. */
export const MAX_JSON_CHUNKS = 16;
export const MAX_JSON_CHARS = CHUNK_CHARS * MAX_JSON_CHUNKS;

/** `data`, `data1`, `data2`, … holding the JSON text. */
export function jsonProperties(json: string): Record<string, string> {
  if (json.length > MAX_JSON_CHARS)
    throw new RangeError(`${json.length} characters of JSON do not fit a table row (at most ${MAX_JSON_CHARS})`);
  const out: Record<string, string> = { data: json.slice(0, CHUNK_CHARS) };
  for (let i = 1; i * CHUNK_CHARS < json.length; i++) out[`data${i}`] = json.slice(i * CHUNK_CHARS, (i + 1) * CHUNK_CHARS);
  return out;
}

/** The JSON text back from an entity written with jsonProperties (or an older single `data`). */
export function jsonOf(entity: Record<string, unknown>): string {
  let json = String(entity.data);
  for (let i = 1; typeof entity[`data${i}`] === 'string'; i++) json += entity[`data${i}`] as string;
  return json;
}
