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

const AT = 0x40;
const DOT = 0x2e;
const DASH = 0x2d;
/** Bytes EMAIL's local part admits: ASCII but whitespace and @"(),:;<>[\] (non-ASCII is left to the text path). */
const LOCAL_PART = Uint8Array.from({ length: 256 }, (_, c) =>
  c < 0x80 && !/[\s@"(),:;<>[\\\]]/.test(String.fromCharCode(c)) ? 1 : 0,
);
const isLabelByte = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === DASH;

/**
 * Whether the ASCII bytes [from, to) are an email normalizeEmail keeps exactly as it is (so they can
 * be sent as they are, without a string made): EMAIL's test, byte by byte.
 */
export function isNormalEmail(b: Uint8Array, from: number, to: number): boolean {
  if (to - from > 254) return false;
  let i = from;
  for (; i < to && b[i] !== AT; i++) if (!LOCAL_PART[b[i]!]) return false;
  if (i === from || i === to) return false;
  let labels = 0;
  do {
    const start = ++i; // after the @, or a dot
    while (i < to && isLabelByte(b[i]!)) i++;
    if (i === start || i - start > 63 || b[start] === DASH || b[i - 1] === DASH) return false;
    labels++;
  } while (i < to && b[i] === DOT);
  return i === to && labels >= 2;
}
