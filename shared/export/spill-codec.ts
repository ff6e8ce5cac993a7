// The partition step's spill line for one partial profile: unit-separated tokens instead of JSON,
// because encoding and decoding every row of the snapshot is the engine's hottest path.
//   seg ␟ key ␟ ext ␟ alias ␟ email ␟ phone ␟ <one token per mapped attribute> ␟ omitted
// Text holding a newline or separator is written as `j` + JSON; attribute tokens carry their type.
import type { PartialProfile } from './profile';

export const SEP = '\x1f';

const needsJson = (v: string) => v.includes('\n') || v.includes('\r') || v.includes(SEP);
/** Text (or absent) as one token: never holds a newline or separator. */
export const textToken = (v: string | undefined) => (v === undefined ? '' : needsJson(v) || v.charCodeAt(0) === 0x6a /* j */ ? `j${JSON.stringify(v)}` : `s${v}`);
export const tokenText = (t: string) => (t === '' ? undefined : t.charCodeAt(0) === 0x6a ? (JSON.parse(t.slice(1)) as string) : t.slice(1));

/** A typed attribute value as a token. */
function valueToken(v: string | number | boolean | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'number') return `n${v}`;
  if (typeof v === 'boolean') return v ? 't' : 'f';
  return textToken(v);
}

function tokenValue(t: string): string | number | boolean | undefined {
  switch (t.charCodeAt(0)) {
    case 0x6e: /* n */ return Number(t.slice(1));
    case 0x74: /* t */ return true;
    case 0x66: /* f */ return false;
    default: return tokenText(t);
  }
}

export class SpillCodec {
  constructor(private readonly attributes: readonly string[]) {}

  encode(p: PartialProfile): string {
    let line = `${p.seg}${SEP}${textToken(p.key)}${SEP}${textToken(p.ext)}${SEP}${textToken(p.alias)}${SEP}${textToken(p.email)}${SEP}${textToken(p.phone)}`;
    for (const a of this.attributes) line += SEP + valueToken(p.attrs[a]);
    return `${line}${SEP}${p.omitted ? `j${JSON.stringify(p.omitted)}` : ''}`;
  }

  /** The profile key of an encoded line, without decoding the rest. */
  keyOf(line: string): string {
    const a = line.indexOf(SEP);
    return tokenText(line.slice(a + 1, line.indexOf(SEP, a + 1)))!;
  }

  decode(line: string): PartialProfile {
    const t = line.split(SEP);
    const p: PartialProfile = { seg: Number(t[0]), key: tokenText(t[1]!)!, attrs: {} };
    const ext = tokenText(t[2]!);
    if (ext !== undefined) p.ext = ext;
    const alias = tokenText(t[3]!);
    if (alias !== undefined) p.alias = alias;
    const email = tokenText(t[4]!);
    if (email !== undefined) p.email = email;
    const phone = tokenText(t[5]!);
    if (phone !== undefined) p.phone = phone;
    for (let i = 0; i < this.attributes.length; i++) {
      const v = tokenValue(t[6 + i]!);
      if (v !== undefined) p.attrs[this.attributes[i]!] = v;
    }
    const omitted = t[6 + this.attributes.length];
    if (omitted) p.omitted = JSON.parse(omitted.slice(1)) as Record<string, string>;
    return p;
  }
}
