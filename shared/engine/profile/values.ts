// Email and phone checks: an invalid value is left out of the profile (and counted), never sent.

// Pragmatic address check (what Braze accepts): local@domain.tld, no spaces, one @.
const EMAIL =
  /^[^\s@"(),:;<>[\\\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function normalizeEmail(raw: string): string | null {
  const v = raw.trim();
  return v.length <= 254 && EMAIL.test(v) ? v : null;
}

/** E.164-style: optional +, 7–15 digits once spaces, dots, dashes and parentheses are removed. */
export function normalizePhone(raw: string): string | null {
  const v = raw.trim().replace(/[\s().-]/g, '');
  return /^\+?[1-9]\d{6,14}$/.test(v) ? v : null;
}
