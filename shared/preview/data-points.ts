// What a /users/track attributes object costs on a Braze data-point contract (the legacy billing
// metric; contracts signed after spring 2025 bill monthly active users instead). Braze's rules:
// every attribute set on a profile is one data point — a whole array set at once is one, a `null`
// (removing the attribute) is one — while identifiers and subscription-state changes are free.
// https://www.braze.com/docs/user_guide/data/data_points/

/** Keys of an attributes object that identify the user or steer the update: never billed. */
const FREE_KEYS = new Set([
  'external_id',
  'user_alias',
  'braze_id',
  'email_subscribe',
  'push_subscribe',
  'subscription_groups',
  '_update_existing_only',
]);

export function dataPointsOf(object: Record<string, unknown>): number {
  let points = 0;
  for (const key of Object.keys(object)) if (!FREE_KEYS.has(key)) points++;
  return points;
}

/** One address and nothing else: a value with several, or text around one, is no e-mail address. */
const EMAIL = /^([^@\s])([^@\s]*)@([^@\s]+\.[^@\s]+)$/;
/** What a phone number holds: digits, spaces, `+ ( ) - . /`, at least a few digits. */
const PHONE = /^(?=(?:\D*\d){3})[\d\s+().\-/]+$/;
const HIDDEN = '•';

/** An e-mail address shown as `j•••••••@example.com`: the first character and the domain, the length kept. Anything but one address: masked text. */
export const maskEmail = (value: string) =>
  EMAIL.test(value)
    ? value.replace(
        EMAIL,
        (_m, first: string, rest: string, domain: string) => `${first}${HIDDEN.repeat([...rest].length)}@${domain}`,
      )
    : maskText(value);

/** A phone number with all but its last two digits hidden; a value that is no phone number: masked text. */
export function maskPhone(value: string): string {
  if (!PHONE.test(value)) return maskText(value);
  const digits = value.replace(/\D/g, '').length;
  let seen = 0;
  return value.replace(/\d/g, (d) => (++seen > digits - 2 ? d : HIDDEN));
}

/** Any other text: its first character, then one dot per character. */
export function maskText(value: string): string {
  const chars = [...value];
  return chars.length <= 1 ? HIDDEN.repeat(chars.length) : chars[0] + HIDDEN.repeat(chars.length - 1);
}

/** A string as a sample shows it: one whole e-mail address keeps its domain, any other text only its first character. */
const maskString = (value: string) => (EMAIL.test(value) ? maskEmail(value) : maskText(value));

/**
 * A discovered column's sample: typed as a run types it, masked whatever the column is called (a
 * column's name says nothing sure about what it holds). Strings as `maskString`, numbers keep their
 * digit count, booleans and nulls stay.
 */
export function maskSample(value: unknown): unknown {
  if (typeof value === 'string') return maskString(value);
  return maskValue('', value);
}

/** A value as a preview object shows it: its type and length kept, its content hidden (booleans and nulls say little and stay). */
export function maskValue(key: string, value: unknown): unknown {
  if (typeof value === 'string') return key === 'phone' ? maskPhone(value) : maskString(value);
  // Same number of digits, none of them the real ones.
  if (typeof value === 'number') return Number(String(value).replace(/\d/g, '9'));
  if (Array.isArray(value)) return value.map((v) => maskValue(key, v));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = k === 'alias_label' ? v : maskValue(k, v);
    return out;
  }
  return value;
}

/**
 * A sample object as the preview shows it: every value the export maps from CI — identifiers,
 * e-mail, phone, names, custom attributes — masked, keeping its type and length. Left as they are:
 * `keep` (the export's membership attributes: CI segment names) and how the object steers Braze.
 */
export function maskObject(object: Record<string, unknown>, keep: ReadonlySet<string> = new Set()): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object))
    out[key] = keep.has(key) || key === '_update_existing_only' ? value : maskValue(key, value);
  return out;
}
