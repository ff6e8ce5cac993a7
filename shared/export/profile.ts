// From CSV rows to Braze attributes objects (DESIGN.md §5): rows become partial profiles keyed by
// the CI profile ID, partials of one profile merge across segments, and a merged profile becomes
// exactly one attributes object with its identifier, mapped attributes and segment membership.
import { coerce } from '../snapshot/cdm-types';
import { membershipAttribute, type ExportDefinition } from '../exports/schema';
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
  private readonly types: Record<string, string | undefined> = {};
  readonly problems: ColumnProblem[] = [];

  constructor(
    private readonly def: ExportDefinition,
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
      else {
        this.idx[field] = i;
        this.types[field] = columns[i]!.dataType;
      }
    }
  }

  /** The mapping fields this table has a column for. */
  get mappedFields(): string[] {
    return Object.keys(this.idx);
  }

  private text(fields: string[], field: string): string {
    const i = this.idx[field];
    return i === undefined ? '' : (fields[i] ?? '').trim();
  }

  map(fields: string[]): RowResult {
    if (fields.length !== this.columns.length) {
      return { ok: false, reason: `row has ${fields.length} fields, the table has ${this.columns.length} columns` };
    }
    const profileId = this.text(fields, 'matching.profileId');
    const ext = this.text(fields, 'matching.brazeCustomerId');
    if (!profileId && !ext) return { ok: false, reason: 'no usable identifier: both the profile ID and the Braze customer ID are empty' };
    if (profileId.length > 512 || ext.length > 512) return { ok: false, reason: 'identifier longer than 512 characters', profileId: profileId.slice(0, 64) };
    const partial: PartialProfile = { key: profileId || `ext:${ext}`, seg: this.segmentIndex, attrs: {} };
    if (ext) partial.ext = ext;
    else partial.alias = profileId;
    const omit = (name: string, reason: string) => ((partial.omitted ??= {})[name] = reason);

    const email = this.text(fields, 'matching.email');
    if (email) {
      const v = normalizeEmail(email);
      if (v) partial.email = v;
      else omit('email', 'invalid email');
    }
    const phone = this.text(fields, 'matching.phone');
    if (phone) {
      const v = normalizePhone(phone);
      if (v) partial.phone = v;
      else omit('phone', 'invalid phone');
    }
    for (const attr of Object.keys(this.def.matching.attributes)) {
      const field = `matching.attributes.${attr}`;
      if (this.idx[field] === undefined) continue;
      const c = coerce(fields[this.idx[field]!] ?? '', this.types[field]);
      if (!c.ok) omit(attr, c.reason);
      else if (typeof c.value === 'string' && c.value.length > MAX_ATTRIBUTE_CHARS) omit(attr, `longer than ${MAX_ATTRIBUTE_CHARS} characters`);
      else if (c.value !== null) partial.attrs[attr] = c.value;
    }
    return { ok: true, partial };
  }
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
  const sorted = [...partials].sort((a, b) => a.seg - b.seg);
  const first = sorted[0]!;
  const merged: MergedProfile = { key: first.key, attrs: {}, segments: [], omitted: {} };
  for (const p of sorted) {
    if (!merged.segments.includes(p.seg)) merged.segments.push(p.seg);
    if (merged.ext === undefined && p.ext) merged.ext = p.ext;
    if (merged.email === undefined && p.email) merged.email = p.email;
    if (merged.phone === undefined && p.phone) merged.phone = p.phone;
    for (const [k, v] of Object.entries(p.attrs)) if (!(k in merged.attrs)) merged.attrs[k] = v;
    for (const [k, v] of Object.entries(p.omitted ?? {})) if (!(k in merged.omitted)) merged.omitted[k] = v;
  }
  // A value found in any row wins over "invalid" in another.
  for (const k of Object.keys(merged.omitted)) {
    if (k in merged.attrs || (k === 'email' && merged.email) || (k === 'phone' && merged.phone)) delete merged.omitted[k];
  }
  if (!merged.ext) merged.alias = first.alias ?? sorted.find((p) => p.alias)?.alias;
  return merged;
}

export type BrazeAttributes = Record<string, unknown>;

/** How a profile is addressed in Braze, as kept in the sync state: `e:<external_id>` or `a:<alias_name>`. */
export const identityOf = (p: { ext?: string; alias?: string }) => (p.ext ? `e:${p.ext}` : `a:${p.alias}`);

function identifierObject(identity: string, aliasLabel: string): BrazeAttributes {
  return identity.startsWith('e:')
    ? { external_id: identity.slice(2) }
    : { user_alias: { alias_name: identity.slice(2), alias_label: aliasLabel }, _update_existing_only: false };
}

/** The one attributes object sent for a profile (keys in a fixed order, so fingerprints are stable). */
export function toBrazeObject(p: MergedProfile, def: ExportDefinition): BrazeAttributes {
  const obj: BrazeAttributes = identifierObject(identityOf(p), def.matching.aliasLabel);
  if (p.email) obj.email = p.email;
  if (p.phone) obj.phone = p.phone;
  for (const attr of Object.keys(def.matching.attributes).sort()) if (attr in p.attrs) obj[attr] = p.attrs[attr];
  Object.assign(obj, membershipValues(def, p.segments));
  return obj;
}

/** Membership of the export's segments: a sorted list, or one boolean per segment. */
export function membershipValues(def: ExportDefinition, segmentIndexes: number[] | null): BrazeAttributes {
  if (def.membership.format === 'boolean') {
    return Object.fromEntries(def.segments.map((s, i) => [`${def.membership.booleanPrefix}${s}`, segmentIndexes?.includes(i) ?? false]));
  }
  const list = segmentIndexes ? segmentIndexes.map((i) => def.segments[i]!).sort() : null;
  return { [membershipAttribute(def)]: list };
}

/** The object that tells Braze a profile left every segment of the export. */
export function leaverObject(identity: string, def: ExportDefinition): BrazeAttributes {
  return { ...identifierObject(identity, def.matching.aliasLabel), ...membershipValues(def, null) };
}
