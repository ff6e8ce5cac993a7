// The partition step's spill line for one partial profile: unit-separated tokens instead of JSON,
// because encoding and decoding every row of the snapshot is the engine's hottest path.
//   seg ␟ key ␟ ext ␟ alias ␟ email ␟ phone ␟ <one token per mapped attribute> ␟ omitted
// Text holding a newline or separator is written as `j` + JSON; attribute tokens carry their type.
import type { PartialProfile } from './profile';

const SEP = '\x1f';

const needsJson = (v: string) => v.includes('\n') || v.includes('\r') || v.includes(SEP);
const text = (v: string | undefined) => (v === undefined ? '' : needsJson(v) || v.charCodeAt(0) === 0x6a /* j */ ? `j${JSON.stringify(v)}` : `s${v}`);
const untext = (t: string) => (t === '' ? undefined : t.charCodeAt(0) === 0x6a ? (JSON.parse(t.slice(1)) as string) : t.slice(1));

/** A typed attribute value as a token; also the canonical text fingerprints are taken over. */
export function valueToken(v: string | number | boolean | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'number') return `n${v}`;
  if (typeof v === 'boolean') return v ? 't' : 'f';
  return text(v);
}

function tokenValue(t: string): string | number | boolean | undefined {
  switch (t.charCodeAt(0)) {
    case 0x6e: /* n */ return Number(t.slice(1));
    case 0x74: /* t */ return true;
    case 0x66: /* f */ return false;
    default: return untext(t);
  }
}

export class SpillCodec {
  constructor(private readonly attributes: readonly string[]) {}

  encode(p: PartialProfile): string {
    let line = `${p.seg}${SEP}${text(p.key)}${SEP}${text(p.ext)}${SEP}${text(p.alias)}${SEP}${text(p.email)}${SEP}${text(p.phone)}`;
    for (const a of this.attributes) line += SEP + valueToken(p.attrs[a]);
    return `${line}${SEP}${p.omitted ? `j${JSON.stringify(p.omitted)}` : ''}`;
  }

  decode(line: string): PartialProfile {
    const t = line.split(SEP);
    const p: PartialProfile = { seg: Number(t[0]), key: untext(t[1]!)!, attrs: {} };
    const ext = untext(t[2]!);
    if (ext !== undefined) p.ext = ext;
    const alias = untext(t[3]!);
    if (alias !== undefined) p.alias = alias;
    const email = untext(t[4]!);
    if (email !== undefined) p.email = email;
    const phone = untext(t[5]!);
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
