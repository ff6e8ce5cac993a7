// One user of Braze's export, read the way the export's sync state remembers what it sent: the
// identity it was addressed by, the CI segments its membership attribute(s) show, and the
// fingerprint of the attributes object a run would write for those values — so "is this what we
// last sent?" is the same 64-bit comparison a run makes.
import { BRAZE_STANDARD_FIELDS, type ExportDefinition } from '../exports/schema';
import {
  BrazeObjectWriter,
  bytewiseFingerprint,
  fingerprintBytes,
  fingerprintLike,
  membershipNamesOf,
  type MergedProfile,
} from '../engine';

/** What Braze's export holds for one user (only the fields asked for). */
export interface ExportedUser {
  external_id?: string;
  user_aliases?: { alias_name: string; alias_label: string }[];
  braze_id?: string;
  custom_attributes?: Record<string, unknown>;
  [field: string]: unknown;
}

/**
 * Standard profile fields /users/export/segment and /users/export/ids can return (Braze's "fields to
 * export"); the others an export may write (image_url, facebook, current_location…) Braze never exports.
 */
export const BRAZE_EXPORTABLE_STANDARD_FIELDS = [
  'country',
  'dob',
  'email',
  'email_subscribe',
  'first_name',
  'gender',
  'home_city',
  'language',
  'last_name',
  'phone',
  'push_subscribe',
  'push_tokens',
  'time_zone',
];

/** The export's mapped standard fields Braze cannot export: a verification could never compare them. */
export function unexportableFields(def: ExportDefinition): string[] {
  return Object.keys(def.matching.attributes).filter(
    (n) => BRAZE_STANDARD_FIELDS.includes(n) && !BRAZE_EXPORTABLE_STANDARD_FIELDS.includes(n),
  );
}

/** The fields Braze is asked for: identifiers, the membership attribute(s) and the mapped attributes, nothing else. */
export function fieldsToExport(def: ExportDefinition): string[] {
  const fields = new Set(['external_id', 'user_aliases', 'braze_id', 'email']);
  if (def.matching.phone) fields.add('phone');
  const custom = [...membershipNamesOf(def), ...Object.keys(def.matching.attributes)];
  for (const name of custom) {
    if (!BRAZE_STANDARD_FIELDS.includes(name)) fields.add('custom_attributes');
    else if (BRAZE_EXPORTABLE_STANDARD_FIELDS.includes(name)) fields.add(name);
  }
  return [...fields];
}

/** Membership candidates tried per drifted profile: every subset of the segments, up to this many segments. */
const MAX_SEGMENTS_FOR_CANDIDATES = 10;
/**
 * Candidate fingerprints one verification may try in all (about 3 s of CPU): past that, a drifted
 * profile goes to the snapshot lookup, which tells its segments by reading the snapshot once, instead
 * of up to 1,023 fingerprints each (a million drifted profiles in ten segments: about 25 minutes).
 */
const SEARCH_BUDGET = 2_000_000;

export class BrazeUserReader {
  private readonly writer: BrazeObjectWriter;
  private readonly names: string[];
  private readonly attributeNames: string[];

  /** The mapped fields Braze exports: the others (unexportableFields) are never compared. */
  readonly verifiable: string[];
  /** The mapped fields Braze cannot export (unexportableFields), as bit positions of a state entry's `heldFields`. */
  private readonly unverifiableBits: number[];

  /** Candidate fingerprints this reader may still try (SEARCH_BUDGET). */
  private searchLeft: number;

  constructor(
    private readonly def: ExportDefinition,
    searchBudget = SEARCH_BUDGET,
  ) {
    this.searchLeft = searchBudget;
    this.writer = new BrazeObjectWriter(def);
    this.names = membershipNamesOf(def);
    this.attributeNames = Object.keys(def.matching.attributes).filter((n) => !this.names.includes(n));
    const unexportable = unexportableFields(def);
    this.verifiable = this.writer.fields.filter((f) => !unexportable.includes(f));
    this.unverifiableBits = this.writer.fields.flatMap((f, i) => (unexportable.includes(f) ? [i] : []));
  }

  /**
   * Whether the fingerprint of what Braze holds can ever equal the state's (`held`: the entry's
   * heldFields, `*` when unknown). Not when the object sent held a value of a field Braze cannot
   * export (image_url…): Braze's export never shows it, so no fingerprint taken from Braze's values
   * matches, under any membership. Such a profile is settled from the snapshot's values instead.
   */
  fingerprintCanMatch(held: string): boolean {
    if (!this.unverifiableBits.length) return true;
    if (held === '*') return false;
    return this.unverifiableBits.every((i) => {
      const digit = held[i >> 2];
      return digit === undefined || ((parseInt(digit, 16) >> (i & 3)) & 1) === 0;
    });
  }

  /** The mapped fields, in the state's `heldFields` bit order. */
  get fields(): string[] {
    return this.writer.fields;
  }

  /**
   * How the sync state may know the user, best first: `a:<alias_name>` (an alias with the export's
   * label: the export created the user, even once Braze added an external_id to it), `e:<external_id>`,
   * or `b:<braze_id>` for a user the export could never have written.
   */
  identitiesOf(u: ExportedUser): string[] {
    const ids: string[] = [];
    const alias = u.user_aliases?.find((a) => a.alias_label === this.def.matching.aliasLabel);
    if (alias) ids.push(`a:${alias.alias_name}`);
    if (typeof u.external_id === 'string' && u.external_id) ids.push(`e:${u.external_id}`);
    return ids.length ? ids : [`b:${u.braze_id ?? '?'}`];
  }

  identityOf(u: ExportedUser): string {
    return this.identitiesOf(u)[0]!;
  }

  /**
   * Only what a comparison reads: identifiers, the export's alias, the membership and mapped fields
   * (Braze's export may carry every custom attribute a user has; temp files keep none of the rest).
   */
  project(u: ExportedUser): ExportedUser {
    const out: ExportedUser = {};
    if (typeof u.external_id === 'string' && u.external_id) out.external_id = u.external_id;
    const alias = u.user_aliases?.find((a) => a.alias_label === this.def.matching.aliasLabel);
    if (alias) out.user_aliases = [{ alias_name: alias.alias_name, alias_label: alias.alias_label }];
    if (!alias && !out.external_id && u.braze_id) out.braze_id = u.braze_id;
    const custom: Record<string, unknown> = {};
    for (const name of new Set(['email', 'phone', ...this.names, ...this.attributeNames, ...this.fields])) {
      const standard = name === 'email' || name === 'phone' || BRAZE_STANDARD_FIELDS.includes(name);
      const v = standard ? u[name] : u.custom_attributes?.[name];
      if (v === undefined) continue;
      if (standard) out[name] = v;
      else custom[name] = v;
    }
    if (Object.keys(custom).length) out.custom_attributes = custom;
    return out;
  }

  private valueOf(u: ExportedUser, name: string): unknown {
    return BRAZE_STANDARD_FIELDS.includes(name) ? u[name] : u.custom_attributes?.[name];
  }

  /** The export's segments Braze shows the user in (indexes into the definition's segments). */
  segmentsOf(u: ExportedUser): number[] {
    const { segments, membership } = this.def;
    if (membership.format === 'boolean') return segments.flatMap((_, i) => (this.valueOf(u, this.names[i]!) === true ? [i] : []));
    const list = this.valueOf(u, this.names[0]!);
    return Array.isArray(list) ? segments.flatMap((s, i) => (list.includes(s) ? [i] : [])) : [];
  }

  /** The mapped fields Braze holds a value of for the user (of those it exports). */
  heldFields(u: ExportedUser): string[] {
    return this.verifiable.filter((f) => {
      const v = f === 'email' || f === 'phone' ? u[f] : this.valueOf(u, f);
      return v !== undefined && v !== null && v !== '';
    });
  }

  /** The profile a run would have merged to write what Braze holds. */
  profileOf(u: ExportedUser, identity: string): MergedProfile {
    const attrs: MergedProfile['attrs'] = {};
    for (const name of this.attributeNames) {
      const v = this.valueOf(u, name);
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') attrs[name] = v;
    }
    const text = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
    return {
      key: '',
      ...(identity.startsWith('e:') ? { ext: identity.slice(2) } : { alias: identity.slice(2) }),
      email: text(u.email),
      phone: this.def.matching.phone ? text(u.phone) : undefined,
      attrs,
      segments: [],
      omitted: {},
    };
  }

  /** The fingerprint of the object a run writes for the profile in these segments; taken as `like` (a state's) was, if given. */
  private fingerprint(p: MergedProfile, segments: number[], like?: string): string {
    const bytes = this.objectBytes(p, segments);
    return like === undefined ? fingerprintBytes(bytes, 0, bytes.length) : fingerprintLike(like, bytes, 0, bytes.length);
  }

  /** The object a run writes for the profile in these segments, as bytes. */
  private objectBytes(p: MergedProfile, segments: number[]): Buffer {
    return Buffer.from(this.writer.profile({ ...p, segments }));
  }

  /**
   * The fingerprint of the object a run writes for a profile merged from CI's rows: what the state
   * remembers sending (taken as `like`, that state's, was).
   */
  sentFingerprint(p: MergedProfile, like?: string): string {
    return this.fingerprint(p, p.segments, like);
  }

  /** The mapped fields Braze exports whose value in Braze is not the one `sent` (a profile merged from CI's rows) has. */
  differingFields(sent: MergedProfile, u: ExportedUser, identity: string): string[] {
    const held = this.profileOf(u, identity);
    const value = (p: MergedProfile, f: string) =>
      JSON.stringify((f === 'email' ? p.email : f === 'phone' ? p.phone : p.attrs[f]) ?? null);
    return this.verifiable.filter((f) => value(sent, f) !== value(held, f));
  }

  /** The membership attribute(s) that show the segments `indexes`: the list attribute, or their booleans. */
  membershipFields(indexes: number[]): string[] {
    if (!indexes.length) return [];
    return this.def.membership.format === 'boolean' ? indexes.map((i) => this.names[i]!) : [this.names[0]!];
  }

  /**
   * The fingerprint of the object a run would write for what Braze holds (its membership as shown),
   * and the same taken a byte a step, as releases before four-byte steps took it: the state lines
   * they wrote keep that kind until their profile changes.
   */
  fingerprintsOf(u: ExportedUser, identity: string): [now: string, bytewise: string] {
    const bytes = this.objectBytes(this.profileOf(u, identity), this.segmentsOf(u));
    return [fingerprintBytes(bytes, 0, bytes.length), bytewiseFingerprint(bytes, 0, bytes.length)];
  }

  /**
   * Compares the user with what the state says was sent (`fp`): the same object; or the same values
   * under another membership (the segments we sent, found among the candidates, unless `search` is
   * off or the reader's search budget is spent); or other values.
   */
  compare(
    u: ExportedUser,
    identity: string,
    fp: string,
    search = true,
  ): { same: true } | { same: false; sentSegments: number[] | null } {
    const profile = this.profileOf(u, identity);
    const shown = this.segmentsOf(u);
    if (this.fingerprint(profile, shown, fp) === fp) return { same: true };
    const n = this.def.segments.length;
    const candidates = (1 << n) - 1;
    // A search starts only if it could run to its end; it is charged the fingerprints it tried.
    if (!search || n > MAX_SEGMENTS_FOR_CANDIDATES || candidates > this.searchLeft) return { same: false, sentSegments: null };
    for (let bits = 1; bits <= candidates; bits++) {
      const candidate = Array.from({ length: n }, (_, i) => i).filter((i) => bits & (1 << i));
      if (this.fingerprint(profile, candidate, fp) === fp) {
        this.searchLeft -= bits;
        return { same: false, sentSegments: candidate };
      }
    }
    this.searchLeft -= candidates;
    return { same: false, sentSegments: null };
  }
}
