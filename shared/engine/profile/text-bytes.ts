// What mapping a text field from strings would do, answered over its UTF-8 bytes (a spill token's
// text, raw or as the inside of a JSON string): whether trim() would change it, and its length in
// UTF-16 code units (the unit of Braze's 255-character attribute limit, as String.length counts).
import { RAW_LINE_FEED, utf8SequenceAt } from '../spill/json-bytes';

const BACKSLASH = 0x5c;
const QUOTE = 0x22;

/** Whether a code point is one String.prototype.trim() removes (WhiteSpace and LineTerminator). */
export function isTrimmedAway(cp: number): boolean {
  if (cp < 0x80) return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d);
  return (
    cp === 0xa0 ||
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000 ||
    cp === 0xfeff
  );
}

/** The code point of the well-formed UTF-8 sequence at `i` (lead byte ≥ 0x80), -1 when it is not one. */
function codePointAt(b: Uint8Array, i: number, end: number): number {
  const c = b[i]!;
  const n = utf8SequenceAt(b, i, end, c);
  if (n === 2) return ((c & 0x1f) << 6) | (b[i + 1]! & 0x3f);
  if (n === 3) return ((c & 0x0f) << 12) | ((b[i + 1]! & 0x3f) << 6) | (b[i + 2]! & 0x3f);
  if (n === 4) return ((c & 0x07) << 18) | ((b[i + 1]! & 0x3f) << 12) | ((b[i + 2]! & 0x3f) << 6) | (b[i + 3]! & 0x3f);
  return -1;
}

/** The first character of bytes [from, to) (UTF-8) is one trim() removes, or not well-formed. */
export function trimsAtStart(b: Uint8Array, from: number, to: number): boolean {
  const first = b[from]!;
  if (first < 0x80) return isTrimmedAway(first);
  const cp = codePointAt(b, from, to);
  return cp < 0 || isTrimmedAway(cp);
}

/** The last character of bytes [from, to) (UTF-8) is one trim() removes, or not well-formed. */
export function trimsAtEnd(b: Uint8Array, from: number, to: number): boolean {
  const last = b[to - 1]!;
  if (last < 0x80) return isTrimmedAway(last);
  let lead = to - 1;
  while (lead > from && lead > to - 4 && (b[lead]! & 0xc0) === 0x80) lead--;
  const cp = codePointAt(b, lead, to);
  return cp < 0 || lead + utf8SequenceAt(b, lead, to, b[lead]!) !== to || isTrimmedAway(cp);
}

/** Escapes JSON.stringify writes for what trim() removes: \t \n \f \r (and \u000b, below). */
const isSpaceEscape = (c: number) => c === 0x74 || c === 0x6e || c === 0x66 || c === 0x72;

/** Whether trim() would change the text a JSON string's inside, bytes [from, to), stands for. A \uXXXX escape at either end counts as yes (rare: the caller declines). */
export function jsonTrims(b: Uint8Array, from: number, to: number): boolean {
  if (b[from] === BACKSLASH ? isSpaceEscape(b[from + 1]!) || b[from + 1] === 0x75 : trimsAtStart(b, from, to)) return true;
  // The last character is an escape when an odd run of backslashes precedes it, or it ends \uXXXX.
  let run = 0;
  while (to - 2 - run >= from && b[to - 2 - run] === BACKSLASH) run++;
  if (run % 2 === 1) return isSpaceEscape(b[to - 1]!);
  if (to - 6 >= from && b[to - 6] === BACKSLASH && b[to - 5] === 0x75) return true;
  return trimsAtEnd(b, from, to);
}

/**
 * UTF-16 code units of the text well-formed UTF-8 bytes [from, to) stand for: the inside of a JSON
 * string (`json`: as writeTextBytes or JSON.stringify wrote it, an escape one unit), or a raw
 * token's (spill-codec.ts: each "" one quote).
 */
function unitsOf(b: Uint8Array, from: number, to: number, json: boolean): number {
  let units = 0;
  for (let i = from; i < to; units++) {
    const c = b[i]!;
    if (json && c === BACKSLASH) i += b[i + 1] === 0x75 ? 6 : 2;
    else if (!json && c === QUOTE) i += 2;
    else if (c < 0x80) i++;
    else if (c >= 0xf0) {
      i += 4;
      units++; // a surrogate pair
    } else i += c >= 0xe0 ? 3 : 2;
  }
  return units;
}

/** UTF-16 code units of a JSON string's inside, bytes [from, to). */
export const jsonLength = (b: Uint8Array, from: number, to: number) => unitsOf(b, from, to, true);

/** Whether trim() would change the text of a raw token's bytes [from, to) (spill-codec.ts: a line feed stands there as RAW_LINE_FEED). */
export function rawTrims(b: Uint8Array, from: number, to: number): boolean {
  return b[from] === RAW_LINE_FEED || b[to - 1] === RAW_LINE_FEED || trimsAtStart(b, from, to) || trimsAtEnd(b, from, to);
}

/** UTF-16 code units of the text of a raw token's bytes [from, to). */
export const rawLength = (b: Uint8Array, from: number, to: number) => unitsOf(b, from, to, false);

const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
/** Significant digits any decimal of which a double tells apart (DBL_DIG): such a decimal is its own shortest form. */
const EXACT_DIGITS = 15;

/**
 * Whether bytes [from, to) are a number exactly as JSON.stringify writes the value that typing them
 * gives (coerce() in snapshot/cdm-types.ts): `-`? (`0` | [1-9] digits) and, for a decimal, `.`
 * digits not ending in 0; at most 15 significant digits (so they are the value's shortest form),
 * and not so small that JavaScript would write an exponent (below 1e-6), nor `-0`. Then the bytes
 * can be sent as they are. Anything else (`+1`, `1.50`, ` 3`, `1e5`, …) is left to typing from text.
 */
export function isCanonicalNumber(b: Uint8Array, from: number, to: number, integer: boolean): boolean {
  let i = from;
  const negative = b[i] === MINUS;
  if (negative) i++;
  if (i >= to) return false;
  let digits = 0;
  if (b[i] === ZERO) {
    i++;
    if (i === to) return !negative;
  } else {
    for (; i < to && b[i]! >= ZERO && b[i]! <= NINE; i++) digits++;
    if (digits === 0) return false;
    if (i === to) return digits <= EXACT_DIGITS;
  }
  if (integer || b[i] !== DOT || i + 1 === to || b[to - 1] === ZERO) return false;
  i++;
  let leadingZeros = 0;
  if (digits === 0) for (; i < to && b[i] === ZERO; i++) leadingZeros++;
  if (leadingZeros > 5 || i === to) return false;
  for (; i < to; i++) {
    if (b[i]! < ZERO || b[i]! > NINE) return false;
    digits++;
  }
  return digits <= EXACT_DIGITS;
}
