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

const EMAIL = /^([^@\s])[^@\s]*@(.+)$/;

/** An e-mail address shown as `j•••@example.com`: enough to recognise, not enough to read. */
export const maskEmail = (value: string) => value.replace(EMAIL, '$1•••@$2');

/** A phone number with all but its last two digits hidden. */
export function maskPhone(value: string): string {
  const digits = value.replace(/\D/g, '').length;
  let seen = 0;
  return value.replace(/\d/g, (d) => (++seen > digits - 2 ? d : '•'));
}

/** A sample object as the preview shows it: e-mails (wherever they sit) and phones masked. */
export function maskObject(object: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) {
    if (typeof value !== 'string') out[key] = value;
    else if (key === 'phone') out[key] = maskPhone(value);
    else out[key] = EMAIL.test(value) ? maskEmail(value) : value;
  }
  return out;
}
