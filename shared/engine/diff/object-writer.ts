// The attributes object Braze is sent for a merged profile (DESIGN.md §5), written as JSON text:
// identifier, mapped attributes and segment membership; also the object for a profile that left.
import { membershipAttribute, type ExportDefinition } from '../../exports/schema';
import type { PartialProfile } from '../read/row-mapper';
import type { MergedProfile } from './merge';

/** A string as JSON: most values need no escaping, and checking is cheaper than JSON.stringify. */
function quote(v: string): string {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(v);
  }
  return `"${v}"`;
}

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
