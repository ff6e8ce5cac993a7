// Text written as the inside of a JSON string straight from its UTF-8 bytes, byte for byte what
// JSON.stringify writes for the decoded text, with no string made. Wide CI rows hold quoted fields
// with newlines and doubled quotes: decoding each, undoubling it and JSON.stringify-ing it was most
// of the CPU of reading them. Bytes that are not well-formed UTF-8 (which a decoder would replace
// with U+FFFD) are refused: the caller then takes the text path, so the bytes written never differ.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const HEX = '0123456789abcdef';
/** JSON.stringify's short escapes for control characters (\b \t \n \f \r); 0: \u00XX. */
const SHORT = new Uint8Array(32);
SHORT[0x08] = 0x62;
SHORT[0x09] = 0x74;
SHORT[0x0a] = 0x6e;
SHORT[0x0c] = 0x66;
SHORT[0x0d] = 0x72;

/**
 * The length of the well-formed UTF-8 sequence that starts at `i` with lead byte `c` (≥ 0x80),
 * or 0 when it is not one (as the WHATWG decoder reads it: no overlong forms, no surrogates,
 * nothing above U+10FFFF).
 */
export function utf8SequenceAt(b: Uint8Array, i: number, end: number, c: number): number {
  const c1 = i + 1 < end ? b[i + 1]! : 0;
  if (c >= 0xc2 && c <= 0xdf) return (c1 & 0xc0) === 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const low = c === 0xe0 ? 0xa0 : 0x80;
    const high = c === 0xed ? 0x9f : 0xbf;
    if (c1 < low || c1 > high || i + 2 >= end) return 0;
    return (b[i + 2]! & 0xc0) === 0x80 ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const low = c === 0xf0 ? 0x90 : 0x80;
    const high = c === 0xf4 ? 0x8f : 0xbf;
    if (c1 < low || c1 > high || i + 3 >= end) return 0;
    return (b[i + 2]! & 0xc0) === 0x80 && (b[i + 3]! & 0xc0) === 0x80 ? 4 : 0;
  }
  return 0;
}

/**
 * Writes the text in bytes [from, to) of `src` to `out` at `at`: escaped as inside a JSON string
 * (`escape`), or as it is; with `undouble`, each "" of a quoted CSV field is one quote. Returns where
 * the bytes written end, or -1 when the source is not well-formed UTF-8. `out` must have room for
 * 6 bytes per source byte.
 */
export function writeTextBytes(
  src: Uint8Array,
  from: number,
  to: number,
  out: Uint8Array,
  at: number,
  escape: boolean,
  undouble: boolean,
): number {
  let i = from;
  while (i < to) {
    const c = src[i]!;
    if (c >= 0x80) {
      const n = utf8SequenceAt(src, i, to, c);
      if (n === 0) return -1;
      out[at++] = c;
      out[at++] = src[i + 1]!;
      if (n > 2) out[at++] = src[i + 2]!;
      if (n > 3) out[at++] = src[i + 3]!;
      i += n;
      continue;
    }
    i++;
    at = writeByte(c, out, at, escape);
    if (c === QUOTE && undouble) i++; // the second quote of the pair
  }
  return at;
}

/**
 * A byte of the text as inside a JSON string (`escape`) or as it is; one ≥ 0x80 (of a character
 * the caller checked) as it is. Returns where it ends.
 */
function writeByte(c: number, out: Uint8Array, at: number, escape: boolean): number {
  // The common byte first: about a tenth faster on wide rows' values than testing for a quote first.
  if (c >= 0x20 && c !== QUOTE && c !== BACKSLASH) out[at++] = c;
  else if (c === QUOTE) {
    if (escape) out[at++] = BACKSLASH;
    out[at++] = QUOTE;
  } else if (c === BACKSLASH) {
    out[at++] = BACKSLASH;
    if (escape) out[at++] = BACKSLASH;
  } else if (!escape) out[at++] = c;
  else at = writeControl(c, out, at);
  return at;
}

/** A control character as JSON.stringify escapes it. */
function writeControl(c: number, out: Uint8Array, at: number): number {
  out[at++] = BACKSLASH;
  const short = SHORT[c]!;
  if (short !== 0) {
    out[at++] = short;
    return at;
  }
  out[at++] = 0x75; // u
  out[at++] = 0x30;
  out[at++] = 0x30;
  out[at++] = HEX.charCodeAt(c >> 4);
  out[at++] = HEX.charCodeAt(c & 15);
  return at;
}

// Four bytes a step, for text already known to be well-formed UTF-8 (the CSV scanner checks each
// piece of a partition at once, natively): one test per word for a byte that needs anything, and the
// word copied whole when none does. A byte loop costs about the same per byte as JSON escaping
// itself; this is about three times faster on wide rows' values. Each test below is exact for "some
// byte of the word is …" (the classic SWAR zero-byte test); false positives cannot happen, and which
// byte it is does not matter: the next byte is then taken alone.

/** Whether a byte of word `v` is below 0x20 (a control character). */
const controlIn = (v: number): boolean => ((v - 0x20202020) & ~v & 0x80808080) !== 0;
/** Whether a byte of word `v` is a control character, a quote or a backslash. */
function specialIn(v: number): boolean {
  const q = v ^ 0x22222222;
  const s = v ^ 0x5c5c5c5c;
  return ((((v - 0x20202020) & ~v) | ((q - 0x01010101) & ~q) | ((s - 0x01010101) & ~s)) & 0x80808080) !== 0;
}

/** Whether bytes [from, to) of `src` (`view` over the same bytes) hold a control character. */
export function holdsControl(src: Uint8Array, view: DataView, from: number, to: number): boolean {
  let i = from;
  for (; i + 4 <= to; i += 4) if (controlIn(view.getInt32(i, true))) return true;
  for (; i < to; i++) if (src[i]! < 0x20) return true;
  return false;
}

/** In a raw token (spill-codec.ts), the byte that stands for a line feed (a spill line holds none). */
export const RAW_LINE_FEED = 0x1e;

/**
 * writeTextBytes for a source known to be well-formed UTF-8 (so it never returns -1): the same
 * bytes, a word at a time where no byte of the word needs anything. `view` and `outView` are
 * DataViews over `src` and `out` (byte 0 of each view at byte 0 of its array). With `rawLineFeeds`
 * (escaped), RAW_LINE_FEED stands for a line feed: escaped and undoubled so, a raw token's bytes
 * (spill-codec.ts) are written as JSON.stringify writes its text.
 */
export function writeWellFormedText(
  src: Uint8Array,
  view: DataView,
  from: number,
  to: number,
  out: Uint8Array,
  outView: DataView,
  at: number,
  escape: boolean,
  undouble: boolean,
  rawLineFeeds = false,
): number {
  let i = from;
  for (;;) {
    for (; i + 4 <= to; i += 4, at += 4) {
      const v = view.getInt32(i, true);
      if (specialIn(v)) break;
      outView.setInt32(at, v, true);
    }
    if (i >= to) return at;
    // Bytes of a multi-byte character (≥ 0x80) are copied as they are: the source is well-formed.
    const c = src[i++]!;
    at = writeByte(rawLineFeeds && c === RAW_LINE_FEED ? 0x0a : c, out, at, escape);
    if (c === QUOTE && undouble) i++;
  }
}
