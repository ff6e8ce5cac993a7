// The partition step's spill line for one CSV row: the row as read, cut down to the export's mapped
// columns, as unit-separated tokens. Rows are mapped and typed (profile/row-mapper.ts) only in the
// bucket step, and only for the profiles whose rows changed: a change run reads every row of the
// snapshot, but most profiles need nothing more than their rows' digest (rows-digest.ts).
//   seg ␟ key ␟ <one token per spill column: the raw field, untrimmed>
// A field holding a newline or separator is written as `j` + JSON, any other as `s` + the text;
// a column the table lacks is an empty token. The CSV scanner's path (read/scanned-rows.ts) also
// writes `r` + a quoted field's bytes as they are in the file (quotes doubled, each line feed
// as RAW_LINE_FEED) where the field holds a control character or doubled quotes: copied, not
// escaped while the snapshot is read; escaped only for the profiles whose objects are written.
import type { ExportDefinition } from '../../exports/schema';
import { RAW_LINE_FEED } from './json-bytes';

export const SEP = '\x1f';

/** Control characters (newline, the separator…) cannot stand in a token as they are. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const CONTROL = /[\x00-\x1f]/;
const needsJson = (v: string) => CONTROL.test(v); // a regular expression scans faster than a loop here
/** Text (or absent) as one token: never holds a newline or separator. */
export const textToken = (v: string | undefined) =>
  v === undefined ? '' : needsJson(v) || v.charCodeAt(0) === 0x6a /* j */ ? `j${JSON.stringify(v)}` : `s${v}`;
export const tokenText = (t: string) => textAt(t, 0, t.length);

/** The text token that runs from `from` to `to` in `line`, read in place (undefined: empty token). */
function textAt(line: string, from: number, to: number): string | undefined {
  if (from === to) return undefined;
  const kind = line.charCodeAt(from);
  if (kind === 0x6a /* j */) return JSON.parse(line.slice(from + 1, to)) as string;
  return kind === 0x72 /* r */ ? rawText(line.slice(from + 1, to)) : line.slice(from + 1, to);
}

const RAW_LINE_FEED_CHAR = String.fromCharCode(RAW_LINE_FEED);
/** The text of a raw token's content: a quoted CSV field as it is in the file, its line feeds as RAW_LINE_FEED. */
export const rawText = (raw: string) => raw.replaceAll(RAW_LINE_FEED_CHAR, '\n').replaceAll('""', '"');

/** A mapping field and the CSV column it reads. */
interface SpillColumn {
  field: string;
  column: string;
}

/**
 * The columns a spill line keeps, in its order: the identifiers, email, phone, then the mapped
 * attributes by name. Every thread and step must agree on it.
 */
export function spillColumns(def: Pick<ExportDefinition, 'matching'>): SpillColumn[] {
  const m = def.matching;
  const columns: SpillColumn[] = [{ field: 'matching.profileId', column: m.profileId }];
  if (m.brazeCustomerId) columns.push({ field: 'matching.brazeCustomerId', column: m.brazeCustomerId });
  if (m.email) columns.push({ field: 'matching.email', column: m.email });
  if (m.phone) columns.push({ field: 'matching.phone', column: m.phone });
  for (const attr of Object.keys(m.attributes).sort())
    columns.push({ field: `matching.attributes.${attr}`, column: m.attributes[attr]! });
  return columns;
}

/** A spilled row read back: its segment, profile key and spill-column fields ('' for an empty token). */
interface SpilledRow {
  seg: number;
  key: string;
  fields: string[];
}

/** The spill line of a row: `at` gives each spill column's position in `fields` (-1: the table has none). */
export function encodeRow(seg: number, key: string, fields: readonly string[], at: readonly number[]): string {
  let line = `${seg}${SEP}${textToken(key)}`;
  for (let i = 0; i < at.length; i++) {
    const f = at[i]! < 0 ? '' : fields[at[i]!]!;
    line += f === '' ? SEP : SEP + textToken(f);
  }
  return line;
}

export const decodeRow = (line: string): SpilledRow => decodeRowAt(line, 0, line.length);

/** Decodes the line that runs from `start` to `end` in `text`, read in place. */
export function decodeRowAt(text: string, start: number, end: number): SpilledRow {
  let to = text.indexOf(SEP, start);
  const seg = Number(text.slice(start, to));
  const tokens: string[] = [];
  while (to < end) {
    const from = to + 1;
    to = text.indexOf(SEP, from);
    if (to === -1 || to > end) to = end;
    tokens.push(textAt(text, from, to) ?? '');
  }
  return { seg, key: tokens[0]!, fields: tokens.slice(1) };
}
