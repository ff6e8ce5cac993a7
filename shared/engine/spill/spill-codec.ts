// The partition step's spill line for one partial profile: unit-separated tokens instead of JSON,
// because encoding and decoding every row of the snapshot is the engine's hottest path.
//   seg ␟ key ␟ ext ␟ alias ␟ email ␟ phone ␟ <one token per mapped attribute> ␟ omitted
// Text holding a newline or separator is written as `j` + JSON; attribute tokens carry their type.
import type { PartialProfile } from '../read/row-mapper';

export const SEP = '\x1f';

/** Control characters (newline, the separator…) cannot stand in a token as they are. */
const CONTROL = /[\x00-\x1f]/;
const needsJson = (v: string) => CONTROL.test(v); // a regular expression scans faster than a loop here
/** Text (or absent) as one token: never holds a newline or separator. */
export const textToken = (v: string | undefined) => (v === undefined ? '' : needsJson(v) || v.charCodeAt(0) === 0x6a /* j */ ? `j${JSON.stringify(v)}` : `s${v}`);
export const tokenText = (t: string) => textAt(t, 0, t.length);

/** The text token that runs from `from` to `to` in `line`, read in place (undefined: empty token). */
function textAt(line: string, from: number, to: number): string | undefined {
  if (from === to) return undefined;
  return line.charCodeAt(from) === 0x6a /* j */ ? (JSON.parse(line.slice(from + 1, to)) as string) : line.slice(from + 1, to);
}

/** A typed attribute value as a token. */
function valueToken(v: string | number | boolean | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'number') return `n${v}`;
  if (typeof v === 'boolean') return v ? 't' : 'f';
  return textToken(v);
}

export class SpillCodec {
  constructor(private readonly attributes: readonly string[]) {}

  /** The codec of an export's rows: its mapped attributes in a fixed order (every thread and step must agree). */
  static forExport(def: { matching: { attributes: Record<string, string> } }): SpillCodec {
    return new SpillCodec(Object.keys(def.matching.attributes).sort());
  }

  encode(p: PartialProfile): string {
    let line = `${p.seg}${SEP}${textToken(p.key)}${SEP}${textToken(p.ext)}${SEP}${textToken(p.alias)}${SEP}${textToken(p.email)}${SEP}${textToken(p.phone)}`;
    for (const a of this.attributes) line += SEP + valueToken(p.attrs[a]);
    return `${line}${SEP}${p.omitted ? `j${JSON.stringify(p.omitted)}` : ''}`;
  }

  decode(line: string): PartialProfile {
    return this.decodeAt(line, 0, line.length);
  }

  /** Decodes the line that runs from `start` to `end` in `text`, read in place. */
  decodeAt(line: string, start: number, end: number): PartialProfile {
    // Walks the separators instead of splitting: each value is sliced once, straight from the text.
    let from = start;
    let to = line.indexOf(SEP, start);
    const advance = () => {
      from = to + 1;
      to = line.indexOf(SEP, from);
      if (to === -1 || to > end) to = end;
    };
    const text = (): string | undefined => {
      advance();
      return textAt(line, from, to);
    };
    const p: PartialProfile = { seg: Number(line.slice(start, to)), key: '', attrs: {} };
    p.key = text()!;
    const ext = text();
    if (ext !== undefined) p.ext = ext;
    const alias = text();
    if (alias !== undefined) p.alias = alias;
    const email = text();
    if (email !== undefined) p.email = email;
    const phone = text();
    if (phone !== undefined) p.phone = phone;
    for (let i = 0; i < this.attributes.length; i++) {
      advance();
      if (from === to) continue;
      const name = this.attributes[i]!;
      switch (line.charCodeAt(from)) {
        case 0x6e: /* n */ p.attrs[name] = Number(line.slice(from + 1, to)); break;
        case 0x74: /* t */ p.attrs[name] = true; break;
        case 0x66: /* f */ p.attrs[name] = false; break;
        case 0x6a: /* j */ p.attrs[name] = JSON.parse(line.slice(from + 1, to)) as string; break;
        default: p.attrs[name] = line.slice(from + 1, to);
      }
    }
    advance();
    if (to > from) p.omitted = JSON.parse(line.slice(from + 1, to)) as Record<string, string>;
    return p;
  }
}
