// From CSV rows to partial profiles (DESIGN.md §5): a row becomes what it says about one profile,
// keyed by the CI profile ID (or the Braze customer ID when there is none), with values checked and
// typed. Partials of one profile merge across segments in profile/merge.ts.
import { coercerFor, isTextType, numberKind, type Coerced } from '../../snapshot/cdm-types';
import type { ExportDefinition } from '../../exports/schema';
import { fnv1a32 } from '../hash/key-hash';
import { spillColumns } from '../spill/spill-codec';
import { normalizeEmail, normalizePhone } from './values';

/** What one CSV row says about one profile, in the order segments are listed on the export. */
export interface PartialProfile {
  key: string;
  seg: number;
  ext?: string;
  alias?: string;
  email?: string;
  phone?: string;
  attrs: Record<string, string | number | boolean>;
  /** Attribute names left out because their value was invalid, with the reason. */
  omitted?: Record<string, string>;
}

type RowResult = { ok: true; partial: PartialProfile } | { ok: false; reason: string; profileId?: string };

interface ColumnProblem {
  field: string;
  column: string;
}

/** Braze custom attribute strings are limited; longer values are left out rather than truncated. */
export const MAX_ATTRIBUTE_CHARS = 255;

/** Maps rows of one segment table. Built once per partition from its column names and types. */
/** How a table types one mapped attribute: sent as its trimmed text, as a JSON number (which kind), or coerced otherwise. */
export interface AttributeTyping {
  attr: string;
  at: number;
  text: boolean;
  number: 'integer' | 'decimal' | null;
  coerce: (raw: string) => Coerced;
}

export class RowMapper {
  private readonly idx: Record<string, number> = {};
  readonly problems: ColumnProblem[] = [];
  // Column positions resolved once: map() runs for every row of the snapshot.
  readonly profileIdAt: number;
  readonly externalIdAt: number;
  /** Leading fields of a row that hold both identifiers (what a row read for its profile key needs). */
  readonly identifierFields: number;
  private readonly emailAt: number;
  private readonly phoneAt: number;
  private readonly attributeColumns: AttributeTyping[] = [];
  /** Where each spill column (spill-codec.ts) is in this table's rows; -1 where the table has none. */
  readonly spillAt: number[];

  constructor(
    def: ExportDefinition,
    private readonly segmentIndex: number,
    readonly columns: { name: string; dataType?: string }[],
  ) {
    const find = (column: string) => {
      const i = columns.findIndex((c) => c.name === column);
      return i >= 0 ? i : columns.findIndex((c) => c.name.toLowerCase() === column.toLowerCase());
    };
    const m = def.matching;
    const wanted: [string, string | undefined][] = [
      ['matching.profileId', m.profileId],
      ['matching.email', m.email],
      ['matching.brazeCustomerId', m.brazeCustomerId],
      ['matching.phone', m.phone],
      ...Object.entries(m.attributes).map(([attr, col]): [string, string] => [`matching.attributes.${attr}`, col]),
    ];
    for (const [field, column] of wanted) {
      if (!column) continue;
      const i = find(column);
      if (i < 0) this.problems.push({ field, column });
      else this.idx[field] = i;
    }
    const at = (field: string) => this.idx[field] ?? -1;
    this.profileIdAt = at('matching.profileId');
    this.externalIdAt = at('matching.brazeCustomerId');
    this.identifierFields = Math.max(this.profileIdAt, this.externalIdAt) + 1;
    this.emailAt = at('matching.email');
    this.phoneAt = at('matching.phone');
    for (const attr of Object.keys(m.attributes)) {
      const i = at(`matching.attributes.${attr}`);
      if (i >= 0)
        this.attributeColumns.push({
          attr,
          at: i,
          text: isTextType(columns[i]!.dataType),
          number: numberKind(columns[i]!.dataType),
          coerce: coercerFor(columns[i]!.dataType),
        });
    }
    this.spillAt = spillColumns(def).map((c) => at(c.field));
  }

  /**
   * The mapper of a segment's spilled rows (fields in spill-column order), typed as the table's
   * columns are: the bucket step maps the rows of the profiles that changed with it.
   */
  static forSpilledRows(
    def: ExportDefinition,
    segmentIndex: number,
    tableColumns: readonly { name: string; dataType?: string }[],
  ): RowMapper {
    const typeOf = (name: string) => tableColumns.find((c) => c.name.toLowerCase() === name.toLowerCase())?.dataType;
    return new RowMapper(
      def,
      segmentIndex,
      spillColumns(def).map((c) => ({ name: c.column, dataType: typeOf(c.column) })),
    );
  }

  /** How attribute `attr` is typed in this table (text: trimmed and kept as it is); undefined when the table lacks its column. */
  attributeTyping(attr: string): AttributeTyping | undefined {
    return this.attributeColumns.find((c) => c.attr === attr);
  }

  /** The mapping fields this table has a column for. */
  get mappedFields(): string[] {
    return Object.keys(this.idx);
  }

  /** map() of a row identify() accepted. */
  partialOf(fields: string[]): PartialProfile {
    const r = this.map(fields);
    if (!r.ok) throw new Error(`a row with an identifier was refused: ${r.reason}`);
    return r.partial;
  }

  /** The profile key map() gives the row, or null when map() refuses it. */
  keyOf(fields: string[]): string | null {
    const id = this.identify(fields);
    return id.ok ? id.key : null;
  }

  /** The row's profile key, or why map() refuses the row (the only reasons it has). */
  identify(fields: string[]): { ok: true; key: string } | { ok: false; reason: string; profileId?: string } {
    const ids = this.identifiers(fields);
    return 'reason' in ids ? { ok: false, ...ids } : { ok: true, key: profileKey(ids.profileId, ids.ext) };
  }

  /** The row's identifiers, or why it has no usable one. */
  private identifiers(fields: string[]): { profileId: string; ext: string } | { reason: string; profileId?: string } {
    if (fields.length !== this.columns.length)
      return { reason: `row has ${fields.length} fields, the table has ${this.columns.length} columns` };
    const profileId = this.profileIdAt < 0 ? '' : fields[this.profileIdAt]!.trim();
    const ext = this.externalIdAt < 0 ? '' : fields[this.externalIdAt]!.trim();
    if (!profileId && !ext) return { reason: 'no usable identifier: both the profile ID and the Braze customer ID are empty' };
    if (profileId.length > 512 || ext.length > 512)
      return { reason: 'identifier longer than 512 characters', profileId: profileId.slice(0, 64) };
    return { profileId, ext };
  }

  map(fields: string[]): RowResult {
    const ids = this.identifiers(fields);
    if ('reason' in ids) return { ok: false, ...ids };
    const { profileId, ext } = ids;
    const partial: PartialProfile = { key: profileKey(profileId, ext), seg: this.segmentIndex, attrs: {} };
    if (ext) partial.ext = ext;
    else partial.alias = profileId;

    const email = this.emailAt < 0 ? '' : fields[this.emailAt]!.trim();
    if (email) {
      const v = normalizeEmail(email);
      if (v) partial.email = v;
      else omit(partial, 'email', 'invalid email');
    }
    const phone = this.phoneAt < 0 ? '' : fields[this.phoneAt]!.trim();
    if (phone) {
      const v = normalizePhone(phone);
      if (v) partial.phone = v;
      else omit(partial, 'phone', 'invalid phone');
    }
    for (const column of this.attributeColumns) {
      let value: string | number | boolean | null;
      if (column.text)
        value = fields[column.at]!.trim() || null; // the common case, without a result object
      else {
        const c = column.coerce(fields[column.at]!);
        if (!c.ok) {
          omit(partial, column.attr, c.reason);
          continue;
        }
        value = c.value;
      }
      if (typeof value === 'string' && value.length > MAX_ATTRIBUTE_CHARS)
        omit(partial, column.attr, `longer than ${MAX_ATTRIBUTE_CHARS} characters`);
      else if (value !== null) partial.attrs[column.attr] = value;
    }
    return { ok: true, partial };
  }
}

/** Each segment's table columns (model.json's, by segment name; none without it). */
export type TableColumns = Record<string, readonly { name: string; dataType?: string }[]>;

/**
 * How the bucket step maps spilled rows, per segment index, and the seed of the rows digests: the
 * same rows make the same object only under the same column types, which model.json may change.
 */
export function spilledRowTyping(
  def: ExportDefinition,
  tables: TableColumns,
): { mappers: RowMapper[]; typing: string[]; digestSeed: number } {
  const mappers = def.segments.map((segment, i) => RowMapper.forSpilledRows(def, i, tables[segment] ?? []));
  const types = mappers.map((m) => m.columns.map((c) => c.dataType ?? ''));
  // typing: per segment, its types as one string (segments with the same map the same tokens alike).
  return { mappers, typing: types.map((t) => JSON.stringify(t)), digestSeed: fnv1a32(JSON.stringify(types)) | 0 };
}

/** A profile is keyed by its CI profile ID, or by its Braze customer ID when it has none. */
const profileKey = (profileId: string, ext: string) => profileId || `ext:${ext}`;

function omit(partial: PartialProfile, name: string, reason: string): void {
  (partial.omitted ??= {})[name] = reason;
}
