// The attributes object Braze is sent for a merged profile (DESIGN.md §5), written as JSON text:
// identifier, mapped attributes and segment membership; also the object for a profile that left.
// And what keeps Braze equal to CI beyond that: which mapped fields Braze holds for a profile (so a
// value emptied in CI is cleared with null once), and the withdrawal of membership attributes
// written under earlier settings.
import type { ExportDefinition } from '../../exports/schema';
import type { PartialProfile } from './row-mapper';
import type { MergedProfile } from './merge';
import type { BucketHeader, StateEntry } from '../state/state-line';

/** The membership attribute name in effect. (Here, not beside the schema: engine threads need not load zod.) */
export const membershipAttribute = (def: Pick<ExportDefinition, 'membership' | 'brazeSegmentApiId'>) =>
  def.membership.attribute ?? def.brazeSegmentApiId;

/** The membership attribute(s) an export writes: its one list attribute, or a boolean per segment. */
export const membershipNamesOf = (def: Pick<ExportDefinition, 'membership' | 'brazeSegmentApiId' | 'segments'>): string[] =>
  def.membership.format === 'boolean'
    ? def.segments.map((s) => `${def.membership.booleanPrefix}${s}`)
    : [membershipAttribute(def)];

/** Whether field `i` is set in a state entry's `heldFields` bits (hex, 4 fields a digit, lowest first); unknown bits: maybe. */
function holdsField(heldFields: string | undefined, i: number): boolean {
  if (heldFields === undefined) return true;
  const digit = heldFields[i >> 2];
  return digit !== undefined && ((parseInt(digit, 16) >> (i & 3)) & 1) === 1;
}

/**
 * The `heldFields` text of `fieldCount` fields, `digitAt(d)` giving the bits of fields d..d+3:
 * hex, 4 fields a digit, lowest first, trailing zeros dropped, at least "0".
 */
export function heldFieldsHex(fieldCount: number, digitAt: (d: number) => number): string {
  let hex = '';
  for (let d = 0; d < fieldCount; d += 4) hex += digitAt(d).toString(16);
  return hex.replace(/0+$/, '') || '0';
}

/** What JSON.stringify would escape in a string: control characters, `"`, `\\`, and surrogates (a lone one is escaped). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what is looked for
const NEEDS_ESCAPING = /[\u0000-\u001f"\\\ud800-\udfff]/;

/**
 * A string as JSON: most values need no escaping, and checking is cheaper than JSON.stringify. The
 * check is a regular expression: V8 runs it as machine code, twice as fast as a loop over the
 * characters on wide rows' values (135 against 259 ms for a million 30–180 character strings).
 */
export function quote(v: string): string {
  return NEEDS_ESCAPING.test(v) ? JSON.stringify(v) : `"${v}"`;
}

/**
 * Writes the one attributes object sent for a profile, as JSON text, straight from the merged
 * profile (keys in a fixed order, so the text is also what the profile's fingerprint is taken
 * over). Everything that depends only on the export settings is prepared once per run.
 */
export class BrazeObjectWriter {
  /** The alias label as JSON. */
  readonly aliasLabel: string;
  /** Mapped attributes in a stable order, with their JSON keys; a name the membership uses is left to it. */
  readonly attributes: { name: string; jsonKey: string }[];
  private readonly segments: string[];
  private readonly booleanKeys: string[] | null;
  private readonly listKey: string;
  private readonly membershipJson = new Map<number | string, string>();
  /** The mapped fields, in the order of a state entry's `heldFields` bits: email, phone (if mapped), the attributes. */
  readonly fields: string[];
  /** The membership attribute(s) this export writes, and how: kept in each bucket's header. */
  readonly membershipNames: NonNullable<BucketHeader['membership']>;
  private readonly nullOf: string[];

  constructor(def: ExportDefinition) {
    this.aliasLabel = JSON.stringify(def.matching.aliasLabel);
    this.segments = def.segments;
    this.booleanKeys =
      def.membership.format === 'boolean'
        ? def.segments.map((s) => `,${JSON.stringify(`${def.membership.booleanPrefix}${s}`)}:`)
        : null;
    this.listKey = `,${JSON.stringify(membershipAttribute(def))}:`;
    const membershipNames = new Set(membershipNamesOf(def));
    this.attributes = Object.keys(def.matching.attributes)
      .sort()
      .filter((name) => !membershipNames.has(name))
      .map((name) => ({ name, jsonKey: `,${JSON.stringify(name)}:` }));
    this.fields = ['email', ...(def.matching.phone ? ['phone'] : []), ...this.attributes.map((a) => a.name)];
    this.nullOf = this.fields.map((f) => `,${JSON.stringify(f)}:null`);
    this.membershipNames = { format: def.membership.format, names: [...membershipNames] };
  }

  private has(p: MergedProfile, field: string): boolean {
    return field === 'email' ? !!p.email : field === 'phone' ? !!p.phone : p.attrs[field] !== undefined;
  }

  /**
   * The `heldFields` bits of the profile once Braze takes its object: the fields it sends, and those left
   * out as invalid that Braze held before (an invalid value is not a clear: Braze keeps the old one).
   */
  heldFieldBits(p: MergedProfile, before?: StateEntry, previousFields?: string[]): string {
    return heldFieldsHex(this.fields.length, (d) => {
      let digit = 0;
      for (let i = d; i < d + 4 && i < this.fields.length; i++) {
        const field = this.fields[i]!;
        const held =
          this.has(p, field) ||
          (p.omitted[field] !== undefined && before !== undefined && this.heldBefore(before, field, previousFields));
        if (held) digit |= 1 << (i - d);
      }
      return digit;
    });
  }

  private heldBefore(before: StateEntry, field: string, previousFields: string[] | undefined): boolean {
    const at = previousFields ? previousFields.indexOf(field) : this.fields.indexOf(field);
    return at >= 0 && holdsField(before.heldFields, at);
  }

  /** `,"field":null` for each mapped field Braze held a value of (by `before`) that is empty in CI now. */
  clears(p: MergedProfile, before: StateEntry, previousFields: string[] | undefined): string {
    let json = '';
    for (let i = 0; i < this.fields.length; i++) {
      const field = this.fields[i]!;
      if (!this.has(p, field) && p.omitted[field] === undefined && this.heldBefore(before, field, previousFields))
        json += this.nullOf[i];
    }
    return json;
  }

  /**
   * Membership attributes written under earlier settings (a renamed attribute or prefix, another
   * format) that these settings do not write: `null` for a list, `false` for a boolean. Never a name
   * now used for something else.
   */
  withdrawals(previous: BucketHeader['membership']): string {
    if (!previous) return '';
    const now = new Set([...this.membershipNames.names, ...this.fields]);
    const value = previous.format === 'boolean' ? 'false' : 'null';
    return previous.names
      .filter((n) => !now.has(n))
      .map((n) => `,${JSON.stringify(n)}:${value}`)
      .join('');
  }

  /**
   * The attributes object for a profile in (some of) the export's segments. `extras` (clears and
   * withdrawals) go after everything else: the fingerprint is taken over the object without them.
   */
  profile(p: MergedProfile, extras = ''): string {
    let json = p.ext ? `{"external_id":${quote(p.ext)}` : this.aliasIdentifier(p.alias!);
    if (p.email) json += `,"email":${quote(p.email)}`;
    if (p.phone) json += `,"phone":${quote(p.phone)}`;
    for (const a of this.attributes) {
      const v = p.attrs[a.name];
      if (v !== undefined) json += a.jsonKey + (typeof v === 'string' ? quote(v) : JSON.stringify(v));
    }
    return `${json}${this.membership(p.segments)}${extras}}`;
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

  /** The object that tells Braze a profile left every segment of the export (with what `previous` settings wrote, if they differ). */
  leaver(identity: string, previous?: BucketHeader['membership']): string {
    if (!previous || !this.withdrawals(previous)) return `${this.identifier(identity)}${this.membership(null)}}`;
    // Its membership was written under other settings (it left as they changed): withdraw those names.
    const value = previous.format === 'boolean' ? 'false' : 'null';
    const names = previous.names.filter((n) => !this.fields.includes(n));
    return `${this.identifier(identity)}${names.map((n) => `,${JSON.stringify(n)}:${value}`).join('')}}`;
  }

  /**
   * Opens a withdrawal's object with how Braze finds the profile (no closing brace). Update-only:
   * an object that only removes membership never creates a user, so one deleted in Braze (an
   * erasure request included) stays deleted.
   */
  private identifier(identity: string): string {
    const id = identity.startsWith('e:')
      ? `"external_id":${quote(identity.slice(2))}`
      : `"user_alias":{"alias_name":${quote(identity.slice(2))},"alias_label":${this.aliasLabel}}`;
    return `{${id},"_update_existing_only":true`;
  }

  /** A member's alias profile is created when missing (`_update_existing_only: false`); a re-run updates it. */
  private aliasIdentifier(aliasName: string): string {
    return `{"user_alias":{"alias_name":${quote(aliasName)},"alias_label":${this.aliasLabel}},"_update_existing_only":false`;
  }

  /** Membership of the export's segments: a sorted list (null = left them all), or one boolean per segment. */
  membership(segmentIndexes: number[] | null): string {
    const id = segmentSetId(segmentIndexes);
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

/** The set of segment indexes as a memo key: bits while they fit (no string per profile), else the list. */
function segmentSetId(segmentIndexes: number[] | null): number | string {
  if (segmentIndexes === null) return -1;
  let bits = 0;
  for (const i of segmentIndexes) {
    if (i > 30) return segmentIndexes.join(',');
    bits |= 1 << i;
  }
  return bits;
}
