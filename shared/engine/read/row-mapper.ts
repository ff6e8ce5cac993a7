// From CSV rows to Braze attributes objects (DESIGN.md §5): rows become partial profiles keyed by
// the CI profile ID, partials of one profile merge across segments, and a merged profile becomes
// exactly one attributes object with its identifier, mapped attributes and segment membership.
import { coercerFor, isTextType, type Coerced } from '../../snapshot/cdm-types';
import { membershipAttribute, type ExportDefinition } from '../../exports/schema';
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

export type RowResult = { ok: true; partial: PartialProfile } | { ok: false; reason: string; profileId?: string };

export interface ColumnProblem {
  field: string;
  column: string;
}

/** Braze custom attribute strings are limited; longer values are left out rather than truncated. */
export const MAX_ATTRIBUTE_CHARS = 255;

/** Maps rows of one segment table. Built once per partition from its column names and types. */
export class RowMapper {
  private readonly idx: Record<string, number> = {};
  readonly problems: ColumnProblem[] = [];
  // Column positions resolved once: map() runs for every row of the snapshot.
  private readonly profileIdAt: number;
  private readonly externalIdAt: number;
  private readonly emailAt: number;
  private readonly phoneAt: number;
  private readonly attributeColumns: { attr: string; at: number; text: boolean; coerce: (raw: string) => Coerced }[] = [];

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
    this.emailAt = at('matching.email');
    this.phoneAt = at('matching.phone');
    for (const attr of Object.keys(m.attributes)) {
      const i = at(`matching.attributes.${attr}`);
      if (i >= 0) this.attributeColumns.push({ attr, at: i, text: isTextType(columns[i]!.dataType), coerce: coercerFor(columns[i]!.dataType) });
    }
  }

  /** The mapping fields this table has a column for. */
  get mappedFields(): string[] {
    return Object.keys(this.idx);
  }

  /** The profile key map() gives the row, or null when map() refuses it. */
  keyOf(fields: string[]): string | null {
    const ids = this.identifiers(fields);
    return 'reason' in ids ? null : profileKey(ids.profileId, ids.ext);
  }

  /** The row's identifiers, or why it has no usable one. */
  private identifiers(fields: string[]): { profileId: string; ext: string } | { reason: string; profileId?: string } {
    if (fields.length !== this.columns.length) return { reason: `row has ${fields.length} fields, the table has ${this.columns.length} columns` };
    const profileId = this.profileIdAt < 0 ? '' : fields[this.profileIdAt]!.trim();
    const ext = this.externalIdAt < 0 ? '' : fields[this.externalIdAt]!.trim();
    if (!profileId && !ext) return { reason: 'no usable identifier: both the profile ID and the Braze customer ID are empty' };
    if (profileId.length > 512 || ext.length > 512) return { reason: 'identifier longer than 512 characters', profileId: profileId.slice(0, 64) };
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
      if (column.text) value = fields[column.at]!.trim() || null; // the common case, without a result object
      else {
        const c = column.coerce(fields[column.at]!);
        if (!c.ok) {
          omit(partial, column.attr, c.reason);
          continue;
        }
        value = c.value;
      }
      if (typeof value === 'string' && value.length > MAX_ATTRIBUTE_CHARS) omit(partial, column.attr, `longer than ${MAX_ATTRIBUTE_CHARS} characters`);
      else if (value !== null) partial.attrs[column.attr] = value;
    }
    return { ok: true, partial };
  }
}

/** A profile is keyed by its CI profile ID, or by its Braze customer ID when it has none. */
const profileKey = (profileId: string, ext: string) => profileId || `ext:${ext}`;

function omit(partial: PartialProfile, name: string, reason: string): void {
  (partial.omitted ??= {})[name] = reason;
}

export interface MergedProfile {
  key: string;
  ext?: string;
  alias?: string;
  email?: string;
  phone?: string;
  attrs: Record<string, string | number | boolean>;
  segments: number[];
  omitted: Record<string, string>;
}

/** Merges a profile's partials: first value wins in the export's segment order, then row order. */
export function mergePartials(partials: PartialProfile[]): MergedProfile {
  if (partials.length === 1) {
    // Most profiles come from one row: no merging to do.
    const p = partials[0]!;
    return { key: p.key, ext: p.ext, alias: p.ext ? undefined : p.alias, email: p.email, phone: p.phone, attrs: p.attrs, segments: [p.seg], omitted: p.omitted ?? {} };
  }
  let ordered = true;
  for (let i = 1; i < partials.length; i++) if (partials[i]!.seg < partials[i - 1]!.seg) ordered = false;
  const sorted = ordered ? partials : [...partials].sort((a, b) => a.seg - b.seg); // stable: row order stays
  const first = sorted[0]!;
  const merged: MergedProfile = { key: first.key, attrs: {}, segments: [], omitted: {} };
  let anyOmitted = false;
  for (const p of sorted) {
    if (!merged.segments.includes(p.seg)) merged.segments.push(p.seg);
    if (merged.ext === undefined && p.ext) merged.ext = p.ext;
    if (merged.email === undefined && p.email) merged.email = p.email;
    if (merged.phone === undefined && p.phone) merged.phone = p.phone;
    for (const k in p.attrs) if (!(k in merged.attrs)) merged.attrs[k] = p.attrs[k]!;
    if (p.omitted) {
      anyOmitted = true;
      for (const k in p.omitted) if (!(k in merged.omitted)) merged.omitted[k] = p.omitted[k]!;
    }
  }
  // A value found in any row wins over "invalid" in another.
  if (anyOmitted) {
    for (const k of Object.keys(merged.omitted)) {
      if (k in merged.attrs || (k === 'email' && merged.email) || (k === 'phone' && merged.phone)) delete merged.omitted[k];
    }
  }
  if (!merged.ext) merged.alias = first.alias ?? sorted.find((p) => p.alias)?.alias;
  return merged;
}

/** A string as JSON: most values need no escaping, and checking is cheaper than JSON.stringify. */
function quote(v: string): string {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(v);
  }
  return `"${v}"`;
}

/** How a profile is addressed in Braze, as kept in the sync state: `e:<external_id>` or `a:<alias_name>`. */
export const identityOf = (p: { ext?: string; alias?: string }) => (p.ext ? `e:${p.ext}` : `a:${p.alias}`);

/**
 * Writes the one attributes object sent for a profile, as JSON text, straight from the merged
 * profile (keys in a fixed order, so the text is also what the profile's fingerprint is taken
 * over). Everything that depends only on the export settings is prepared once per run.
 */
export class BrazeObjectWriter {
  private readonly aliasLabel: string;
  /** Mapped attributes in a stable order, with their JSON keys; a name the membership uses is left to it. */
  private readonly attributes: { name: string; jsonKey: string }[];
  private readonly segments: string[];
  private readonly booleanKeys: string[] | null;
  private readonly listKey: string;
  private readonly membershipJson = new Map<string, string>();

  constructor(def: ExportDefinition) {
    this.aliasLabel = JSON.stringify(def.matching.aliasLabel);
    this.segments = def.segments;
    this.booleanKeys = def.membership.format === 'boolean' ? def.segments.map((s) => `,${JSON.stringify(`${def.membership.booleanPrefix}${s}`)}:`) : null;
    this.listKey = `,${JSON.stringify(membershipAttribute(def))}:`;
    const membershipNames = new Set(def.membership.format === 'boolean' ? def.segments.map((s) => `${def.membership.booleanPrefix}${s}`) : [membershipAttribute(def)]);
    this.attributes = Object.keys(def.matching.attributes)
      .sort()
      .filter((name) => !membershipNames.has(name))
      .map((name) => ({ name, jsonKey: `,${JSON.stringify(name)}:` }));
  }

  /** The attributes object for a profile in (some of) the export's segments. */
  profile(p: MergedProfile): string {
    let json = p.ext ? `{"external_id":${quote(p.ext)}` : this.aliasIdentifier(p.alias!);
    if (p.email) json += `,"email":${quote(p.email)}`;
    if (p.phone) json += `,"phone":${quote(p.phone)}`;
    for (const a of this.attributes) {
      const v = p.attrs[a.name];
      if (v !== undefined) json += a.jsonKey + (typeof v === 'string' ? quote(v) : JSON.stringify(v));
    }
    return `${json}${this.membership(p.segments)}}`;
  }

  /**
   * The row of one segment a profile's object was written from, read back from the object: what
   * merging it with later rows needs (not the values that were left out as invalid).
   */
  rowOf(json: string, key: string, segment: number): PartialProfile {
    const o = JSON.parse(json) as Record<string, unknown>;
    const row: PartialProfile = { key, seg: segment, attrs: {} };
    if (typeof o.external_id === 'string') row.ext = o.external_id;
    else row.alias = (o.user_alias as { alias_name: string }).alias_name;
    if (typeof o.email === 'string') row.email = o.email;
    if (typeof o.phone === 'string') row.phone = o.phone;
    for (const { name } of this.attributes) if (o[name] !== undefined) row.attrs[name] = o[name] as string | number | boolean;
    return row;
  }

  /** The object that tells Braze a profile left every segment of the export. */
  leaver(identity: string): string {
    return `${this.identifier(identity)}${this.membership(null)}}`;
  }

  /** Opens the object with how Braze finds the profile (no closing brace). */
  private identifier(identity: string): string {
    return identity.startsWith('e:') ? `{"external_id":${quote(identity.slice(2))}` : this.aliasIdentifier(identity.slice(2));
  }

  private aliasIdentifier(aliasName: string): string {
    return `{"user_alias":{"alias_name":${quote(aliasName)},"alias_label":${this.aliasLabel}},"_update_existing_only":false`;
  }

  /** Membership of the export's segments: a sorted list (null = left them all), or one boolean per segment. */
  private membership(segmentIndexes: number[] | null): string {
    const id = segmentIndexes ? segmentIndexes.join(',') : '';
    let json = this.membershipJson.get(id);
    if (json === undefined) {
      json = this.booleanKeys
        ? this.booleanKeys.map((key, i) => key + String(segmentIndexes?.includes(i) ?? false)).join('')
        : this.listKey + JSON.stringify(segmentIndexes ? segmentIndexes.map((i) => this.segments[i]!).sort() : null);
      // Few distinct memberships recur across millions of profiles; cap the memo all the same.
      if (this.membershipJson.size < 4096) this.membershipJson.set(id, json);
    }
    return json;
  }
}
