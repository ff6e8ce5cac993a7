// The attributes object of a profile written straight from a spill line's bytes (spill-codec.ts),
// byte for byte what BrazeObjectWriter.profile writes for the row mapped from strings, with no
// string made of its text fields. Decoding each wide text field, trimming, escaping and encoding it
// again was a large share of the engine's CPU for a profile of one row (sent early) or of alike
// rows (mapped once in the bucket step). Anything off the common path (a value that trimming,
// checking or typing would change or leave out, an identifier that is not plain ASCII, bytes that
// are not well-formed UTF-8) makes write() decline, and the caller maps the row from strings.
import { copyBytes, grown, type ByteRange } from '../spill/bucket-files';
import { spillColumns, tokenText } from '../spill/spill-codec';
import { utf8SequenceAt, writeWellFormedText } from '../spill/json-bytes';
import { isCanonicalNumber, jsonLength, jsonTrims, rawLength, rawTrims, trimsAtEnd, trimsAtStart } from './text-bytes';
import type { ExportDefinition } from '../../exports/schema';
import { heldFieldsHex, quote, type BrazeObjectWriter } from './object-writer';
import { MAX_ATTRIBUTE_CHARS, type AttributeTyping, type RowMapper } from './row-mapper';
import { isNormalEmail, normalizePhone } from './values';

const SEP = 0x1f;
const J = 0x6a;
const R = 0x72;
const S = 0x73;
// What every object holds, as bytes: a Buffer.write of a short string is a native call, several times
// a byte loop's cost, and each object had five of them.
const EXTERNAL_ID_OPEN = Buffer.from('{"external_id":"');
const CLOSING_QUOTE = Buffer.from('"');
const EMAIL_OPEN = Buffer.from(',"email":"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** What write() does with each attribute the object holds, in the writer's order. */
interface AttributePlan {
  /** Its spill column (token index after the key). */
  token: number;
  jsonKey: Buffer;
  /** Its bit in the `heldFields` bits. */
  field: number;
}

type Typing = AttributeTyping | undefined;

/** A profile's identifier as bytes of a line: its external ID, or its alias name. */
export type IdentifierBytes = ByteRange & { external: boolean };

/** Objects one after another in a buffer (thread/object-bytes.ts's ObjectBytes), to write the next one into. */
export interface ObjectTarget {
  readonly buffer: Buffer;
  /** Where the next object starts. */
  readonly end: number;
  /** Takes the object written after the others, in `buffer` (the list's, or grown() of it) up to `end`. */
  adopt(buffer: Buffer, end: number): void;
}

/** A DataView over the last buffer asked for (a bucket's lines and objects stay in the same memory). */
class ViewOf {
  private buffer: Buffer | null = null;
  private view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

  of(buffer: Buffer): DataView {
    if (buffer !== this.buffer) {
      this.buffer = buffer;
      this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.length);
    }
    return this.view;
  }
}

export class LineObjectWriter {
  /** The object written by the last write() that returned true: bytes[0, length). */
  bytes: Buffer = Buffer.allocUnsafe(4096);
  length = 0;
  /** Its `heldFields` bits. */
  heldFields = '';
  /** Its identifier, as bytes of the line it was written from (valid while that line is): external ID or alias. */
  readonly identifier: IdentifierBytes = { bytes: Buffer.alloc(0), from: 0, to: 0, external: false };
  /** Tokens a spill line has after its segment: the key, then one per spill column. */
  private readonly tokenCount: number;
  /** False when the export's fields do not fit the bits kept here (then write() always declines). */
  private readonly usable: boolean;
  private readonly phoneBit: number;
  private readonly extToken: number;
  private readonly emailToken: number;
  private readonly phoneToken: number;
  private readonly attributes: AttributePlan[];
  private readonly aliasOpen: Buffer;
  private readonly aliasClose: Buffer;
  /** Where each token of the line runs (index 0: the key token). */
  private tokenFrom = new Int32Array(16);
  private tokenTo = new Int32Array(16);
  private readonly typings = new WeakMap<RowMapper, Typing[]>();
  private readonly heldHex = new Map<number, string>();
  /** DataViews over the line and the object buffer, for writing a raw token a word at a time. */
  private readonly lineView = new ViewOf();
  private readonly outView = new ViewOf();
  /** Each membership the writer gives (the same string for the same segments), with the closing brace, as bytes. */
  private readonly membershipBytes = new Map<string, Buffer>();

  constructor(
    def: ExportDefinition,
    private readonly writer: BrazeObjectWriter,
  ) {
    const fields = spillColumns(def).map((c) => c.field);
    this.tokenCount = fields.length + 1;
    this.phoneBit = 1 << writer.fields.indexOf('phone');
    // An attribute named like a Braze field would share its bit; one named like the membership is
    // not written, but mapped (and may be left out). The schema refuses both; declined all the same.
    const mapped = Object.keys(def.matching.attributes);
    this.usable =
      writer.fields.length <= 30 &&
      mapped.every((name) => name !== 'email' && name !== 'phone' && writer.attributes.some((a) => a.name === name));
    this.extToken = fields.indexOf('matching.brazeCustomerId');
    this.emailToken = fields.indexOf('matching.email');
    this.phoneToken = fields.indexOf('matching.phone');
    this.attributes = writer.attributes.map((a) => ({
      token: fields.indexOf(`matching.attributes.${a.name}`),
      jsonKey: Buffer.from(a.jsonKey),
      field: writer.fields.indexOf(a.name),
    }));
    this.aliasOpen = Buffer.from('{"user_alias":{"alias_name":"');
    this.aliasClose = Buffer.from(`","alias_label":${writer.aliasLabel}},"_update_existing_only":false`);
  }

  /**
   * Writes the object of a profile whose rows all hold the fields of the spill line in bytes
   * [start, end) of `line` (without its newline), in `segments`, each row typed by `mapper`.
   * False when the line must be mapped from strings instead (nothing is written then).
   */
  write(line: Buffer, start: number, end: number, mapper: RowMapper, segments: number[]): boolean {
    return this.writeAt(0, line, start, end, mapper, segments);
  }

  /**
   * As write(), but into `objects`, as its next object (nothing is added when it declines): written
   * where it will be sent from, not copied there.
   */
  writeInto(objects: ObjectTarget, line: Buffer, start: number, end: number, mapper: RowMapper, segments: number[]): boolean {
    const own = this.bytes;
    this.bytes = objects.buffer;
    try {
      if (!this.writeAt(objects.end, line, start, end, mapper, segments)) return false;
      objects.adopt(this.bytes, this.length);
      return true;
    } finally {
      this.bytes = own;
      this.length = 0;
    }
  }

  /** Writes the object at `origin` of `bytes`, up to `length`. */
  private writeAt(origin: number, line: Buffer, start: number, end: number, mapper: RowMapper, segments: number[]): boolean {
    if (!this.usable || !this.findTokens(line, start, end)) return false;
    this.length = origin;
    let held = 0;
    if (!this.writeIdentifier(line)) return false;
    const email = this.emailToken;
    if (email >= 0 && this.tokenTo[email + 1]! > this.tokenFrom[email + 1]!) {
      if (!this.writeEmail(line, email + 1)) return false;
      held |= 1;
    }
    const phone = this.phoneToken;
    if (phone >= 0 && this.tokenTo[phone + 1]! > this.tokenFrom[phone + 1]!) {
      const v = normalizePhone(this.tokenText(line, phone + 1));
      if (v === null) return false;
      this.writeText(`,"phone":${quote(v)}`);
      held |= this.phoneBit;
    }
    const typings = this.typingsOf(mapper);
    for (let a = 0; a < this.attributes.length; a++) {
      const plan = this.attributes[a]!;
      const typing = typings[a];
      const t = plan.token + 1;
      if (typing === undefined || this.tokenTo[t]! === this.tokenFrom[t]!) continue;
      const written = typing.text ? this.writeTextAttribute(line, t, plan.jsonKey) : this.writeTyped(line, t, plan, typing);
      if (written === null) return false;
      if (written) held |= 1 << plan.field;
    }
    const membership = this.writer.membership(segments);
    let closing = this.membershipBytes.get(membership);
    if (closing === undefined) {
      closing = Buffer.from(`${membership}}`);
      if (this.membershipBytes.size < 4096) this.membershipBytes.set(membership, closing);
    }
    this.writeBytes(closing, 0, closing.length);
    this.heldFields = this.heldHexOf(held);
    return true;
  }

  /** Its identity (`e:` / `a:`, as identityOf gives it). */
  get identity(): string {
    const { bytes, from, to, external } = this.identifier;
    return (external ? 'e:' : 'a:') + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1', from, to);
  }

  /** The profile key of the line last written (its key token). */
  keyOf(line: Buffer): string {
    return this.tokenText(line, 0);
  }

  /** Finds each token of the line; false when its token count is not the spill columns'. */
  private findTokens(line: Buffer, start: number, end: number): boolean {
    if (this.tokenFrom.length <= this.tokenCount) {
      this.tokenFrom = new Int32Array(this.tokenCount + 1);
      this.tokenTo = new Int32Array(this.tokenCount + 1);
    }
    let i = start;
    while (i < end && line[i] !== SEP) i++; // the segment
    let n = 0;
    while (i < end && n < this.tokenFrom.length) {
      const from = ++i;
      if (line[from] === J || line[from] === R) {
        // A JSON or raw token is often a long text: the native search is faster over it.
        i = line.indexOf(SEP, from);
        if (i === -1 || i > end) i = end;
      } else while (i < end && line[i] !== SEP) i++;
      this.tokenFrom[n] = from;
      this.tokenTo[n++] = i;
    }
    return i >= end && n === this.tokenCount;
  }

  /** The external ID, else the alias; only plain printable ASCII that needs no trimming or escaping. */
  private writeIdentifier(line: Buffer): boolean {
    const ext =
      this.extToken >= 0 && this.tokenTo[this.extToken + 1]! > this.tokenFrom[this.extToken + 1]! ? this.extToken + 1 : -1;
    const t = ext >= 0 ? ext : 1;
    const from = this.tokenFrom[t]! + 1;
    const to = this.tokenTo[t]!;
    if (to <= from || line[from - 1] !== S) return false;
    for (let i = from; i < to; i++) {
      const c = line[i]!;
      if (c <= 0x20 || c >= 0x7f || c === QUOTE || c === BACKSLASH) return false;
    }
    const identifier = this.identifier;
    identifier.bytes = line;
    identifier.from = from;
    identifier.to = to;
    identifier.external = ext >= 0;
    if (ext >= 0) this.writeBytes(EXTERNAL_ID_OPEN, 0, EXTERNAL_ID_OPEN.length);
    else this.writeBytes(this.aliasOpen, 0, this.aliasOpen.length);
    this.writeBytes(line, from, to);
    if (ext >= 0) this.writeBytes(CLOSING_QUOTE, 0, 1);
    else this.writeBytes(this.aliasClose, 0, this.aliasClose.length);
    return true;
  }

  /** A plain ASCII email that normalizing keeps as it is (else the caller maps the row). */
  private writeEmail(line: Buffer, t: number): boolean {
    const from = this.tokenFrom[t]! + 1;
    const to = this.tokenTo[t]!;
    if (line[from - 1] !== S) return false;
    if (!isNormalEmail(line, from, to)) return false; // not ASCII, to be trimmed, or left out as invalid
    // The address check admits no quote, backslash or control character.
    this.writeBytes(EMAIL_OPEN, 0, EMAIL_OPEN.length);
    this.writeBytes(line, from, to);
    this.writeBytes(CLOSING_QUOTE, 0, 1);
    return true;
  }

  /**
   * A text attribute, its token's bytes as the JSON string: false when it is empty once trimmed,
   * null when trimming would change it, it is too long or not well-formed UTF-8.
   */
  private writeTextAttribute(line: Buffer, t: number, jsonKey: Buffer): boolean | null {
    const from = this.tokenFrom[t]! + 1;
    const to = this.tokenTo[t]!;
    if (line[from - 1] === J) {
      // `j` + a JSON string, as JSON.stringify (or writeTextBytes, its equal) wrote the raw text:
      // always well-formed UTF-8 (spill-codec.ts and scanned-rows.ts write no other), so only its ends are looked at.
      const inFrom = from + 1;
      const inTo = to - 1;
      if (inTo === inFrom) return null; // an empty text in JSON is not how tokens are written
      if (jsonTrims(line, inFrom, inTo)) return null;
      if (inTo - inFrom > MAX_ATTRIBUTE_CHARS && jsonLength(line, inFrom, inTo) > MAX_ATTRIBUTE_CHARS) return null;
      this.writeBytes(jsonKey, 0, jsonKey.length);
      this.writeBytes(line, from, to);
      return true;
    }
    if (line[from - 1] === R) {
      if (to <= from || rawTrims(line, from, to)) return null; // no raw token is empty; declined all the same
      if (to - from > MAX_ATTRIBUTE_CHARS && rawLength(line, from, to) > MAX_ATTRIBUTE_CHARS) return null;
      this.writeBytes(jsonKey, 0, jsonKey.length);
      this.writeRaw(line, from, to);
      return true;
    }
    if (trimsAtStart(line, from, to) || trimsAtEnd(line, from, to)) return null;
    this.writeBytes(jsonKey, 0, jsonKey.length);
    return this.writeEscaped(line, from, to) ? true : null;
  }

  /** `s` text (no control characters) as a JSON string: quotes and backslashes escaped, UTF-8 checked and its length counted. */
  private writeEscaped(line: Buffer, from: number, to: number): boolean {
    this.reserve(2 * (to - from) + 2);
    const out = this.bytes;
    let at = this.length;
    out[at++] = QUOTE;
    let units = 0;
    for (let i = from; i < to; units++) {
      const c = line[i]!;
      if (c >= 0x80) {
        const n = utf8SequenceAt(line, i, to, c);
        if (n === 0) return false;
        for (let k = 0; k < n; k++) out[at++] = line[i + k]!;
        if (n === 4) units++;
        i += n;
        continue;
      }
      if (c === QUOTE || c === BACKSLASH) out[at++] = BACKSLASH;
      out[at++] = c;
      i++;
    }
    if (units > MAX_ATTRIBUTE_CHARS) return false;
    out[at++] = QUOTE;
    this.length = at;
    return true;
  }

  /** A raw token's text (spill-codec.ts) as a JSON string. */
  private writeRaw(line: Buffer, from: number, to: number): void {
    this.reserve(6 * (to - from) + 2);
    const out = this.bytes;
    out[this.length] = QUOTE;
    const at = this.length + 1;
    const end = writeWellFormedText(line, this.lineView.of(line), from, to, out, this.outView.of(out), at, true, true, true);
    out[end] = QUOTE;
    this.length = end + 1;
  }

  /** A typed attribute, coerced from its text (short values: the string is cheap); as writeTextAttribute says. */
  private writeTyped(line: Buffer, t: number, plan: AttributePlan, typing: NonNullable<Typing>): boolean | null {
    // A number already written as JSON writes it (most numbers a CI export holds): its bytes go as they are.
    const from = this.tokenFrom[t]! + 1;
    if (
      typing.number !== null &&
      line[from - 1] === S &&
      isCanonicalNumber(line, from, this.tokenTo[t]!, typing.number === 'integer')
    ) {
      this.writeBytes(plan.jsonKey, 0, plan.jsonKey.length);
      this.writeBytes(line, from, this.tokenTo[t]!);
      return true;
    }
    const c = typing.coerce(this.tokenText(line, t));
    if (!c.ok) return null;
    if (c.value === null) return false;
    if (typeof c.value === 'string' && c.value.length > MAX_ATTRIBUTE_CHARS) return null;
    this.writeBytes(plan.jsonKey, 0, plan.jsonKey.length);
    this.writeText(typeof c.value === 'string' ? quote(c.value) : JSON.stringify(c.value));
    return true;
  }

  /** A token's text, decoded as spill-codec.ts decodes it, from its kind on ('' for an empty one). */
  private tokenText(line: Buffer, t: number): string {
    return tokenText(line.toString('utf8', this.tokenFrom[t]!, this.tokenTo[t]!)) ?? '';
  }

  /** Per attribute plan: how the mapper's table types it (built once per mapper). */
  private typingsOf(mapper: RowMapper): Typing[] {
    let typings = this.typings.get(mapper);
    if (!typings) {
      const names = this.writer.attributes.map((a) => a.name);
      this.typings.set(mapper, (typings = names.map((name) => mapper.attributeTyping(name))));
    }
    return typings;
  }

  /** The `heldFields` text of the bits `held` (field i at bit i), as BrazeObjectWriter.heldFieldBits writes it. */
  private heldHexOf(held: number): string {
    let hex = this.heldHex.get(held);
    if (hex === undefined) {
      hex = heldFieldsHex(this.writer.fields.length, (d) => (held >>> d) & 15);
      if (this.heldHex.size < 4096) this.heldHex.set(held, hex);
    }
    return hex;
  }

  private writeText(text: string): void {
    this.reserve(text.length * 3);
    this.length += this.bytes.write(text, this.length);
  }

  private writeBytes(source: Buffer, from: number, to: number): void {
    this.reserve(to - from);
    this.length = copyBytes(source, from, to, this.bytes, this.length);
  }

  private reserve(bytes: number): void {
    if (this.length + bytes > this.bytes.length) this.bytes = grown(this.bytes, this.length, bytes);
  }
}
