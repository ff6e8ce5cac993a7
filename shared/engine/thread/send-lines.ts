// What the state needs of each object a bucket sends, as UTF-8 bytes, column by column: the state
// line kept once Braze took the object, the line of what Braze had before (kept if it did not), and
// the profile's key (for the rejected-rows report). Built on the engine thread, read on the main
// thread through the state lines' ring. Posted as strings, the lines cost both threads a copy each, and
// sat on the main thread's heap until the bucket's state was written: a million profiles' worth of
// strings old enough to be promoted, for its full collections to mark.
import type { IdentifierBytes } from '../profile/line-object';
import type { ByteRange } from '../spill/bucket-files';
import { StateBytes } from '../state/state-bytes';
import { handOver, NOTHING, takeOver, transferredWith, type Handed, type RingReader, type RingWriter } from './shared-ring';

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const TAB = 0x09;

/** The three columns on their way to the main thread. */
export interface HandedLines {
  sent: Handed;
  before: Handed;
  keys: Handed;
}

/** The buffers a message carrying `lines` must transfer. */
export const transferredWithLines = (lines: HandedLines): ArrayBuffer[] => [
  ...transferredWith(lines.sent),
  ...transferredWith(lines.before),
  ...transferredWith(lines.keys),
];

/** Each object's lines, one line per object in each column ('' where there is none); used again after each hand-over. */
export class SendLinesBuilder {
  private readonly sent = new StateBytes();
  private readonly before = new StateBytes();
  private readonly keys = new StateBytes();

  add(key: string, sentLine: string, beforeLine: string): void {
    this.sent.addText(sentLine);
    this.before.addText(beforeLine);
    // A key is any text: one with a line break (or a leading quote) goes as JSON.
    this.keys.addText(/[\n\r]/.test(key) || key.charCodeAt(0) === QUOTE ? JSON.stringify(key) : key);
  }

  /**
   * As add(), for a profile new to the export (nothing before) whose key can go as it is (see
   * SpilledProfiles.plainKey) and whose identifier is printable ASCII: its state line
   * `key \t identity \t fp \t heldFields [\t rowsDigest]` (as stateLine() writes it) written from
   * the bytes, with no string made per profile (a first run has a million).
   */
  addNew(key: ByteRange, identifier: IdentifierBytes, fp: string, heldFields: string, rowsDigest: string | undefined): void {
    const sent = this.sent;
    const keyLength = key.to - key.from;
    const idLength = identifier.to - identifier.from;
    sent.open(keyLength + idLength + fp.length + heldFields.length + (rowsDigest?.length ?? 0) + 8);
    sent.copy(key.bytes, key.from, key.to);
    sent.byte(TAB);
    sent.ascii(identifier.external ? 'e:' : 'a:');
    sent.copy(identifier.bytes, identifier.from, identifier.to);
    sent.byte(TAB);
    sent.ascii(fp);
    sent.byte(TAB);
    sent.ascii(heldFields);
    if (rowsDigest !== undefined) {
      sent.byte(TAB);
      sent.ascii(rowsDigest);
    }
    sent.end();
    this.before.open(0);
    this.before.end();
    this.keys.open(keyLength);
    this.keys.copy(key.bytes, key.from, key.to);
    this.keys.end();
  }

  /** Drops every line (the memory stays, for the next ones). */
  clear(): void {
    this.sent.clear();
    this.before.clear();
    this.keys.clear();
  }

  /** The columns, into the ring in the order SendLines.receive reads them; the builder starts afresh. */
  handOver(ring: RingWriter): HandedLines {
    return {
      sent: handOverLines(ring, this.sent),
      before: handOverLines(ring, this.before),
      keys: handOverLines(ring, this.keys),
    };
  }
}

/**
 * Lines into the ring, or (no room there) as memory of their own to transfer; either way their
 * builder starts afresh, to be used again bucket after bucket.
 */
export function handOverLines(ring: RingWriter, lines: StateBytes): Handed {
  const handed = handOver(ring, lines.written());
  if ('bytes' in handed && handed !== NOTHING) return { bytes: lines.take() };
  lines.clear();
  return handed;
}

/** A bucket's send lines on the main thread (views of the ring: valid until released). */
export class SendLines {
  /** Per column, where each line ends (its newline), found when first asked for. */
  private readonly ends: (Uint32Array | null)[] = [null, null, null];

  private constructor(
    /** Each column's lines, one after another, each ending in a newline. */
    readonly columns: [sent: Uint8Array, before: Uint8Array, keys: Uint8Array],
    readonly count: number,
  ) {}

  /** Lines read back as they were (see run/staged-buckets.ts). */
  static of(columns: [sent: Uint8Array, before: Uint8Array, keys: Uint8Array], count: number): SendLines {
    return new SendLines(columns, count);
  }

  /** Reads the columns handed with `count` objects; `release` gives their memory back. */
  static receive(ring: RingReader, handed: HandedLines, count: number): { lines: SendLines; release: () => void } {
    const sent = takeOver(ring, handed.sent);
    const before = takeOver(ring, handed.before);
    const keys = takeOver(ring, handed.keys);
    const release = () => {
      sent.release();
      before.release();
      keys.release();
    };
    return { lines: new SendLines([sent.bytes, before.bytes, keys.bytes], count), release };
  }

  /** Every sent line, each with its newline: the state's lines when Braze took every object and none left. */
  get allSent(): Uint8Array {
    return this.columns[0];
  }

  /** Object j's state line once Braze took it, with its newline; empty for a leaver. */
  sentAt(j: number): Uint8Array {
    return this.lineAt(0, j);
  }

  /** Object j's state line of what Braze had before, with its newline; empty if nothing. */
  beforeAt(j: number): Uint8Array {
    return this.lineAt(1, j);
  }

  sentLine(j: number): string {
    return this.text(this.sentAt(j));
  }

  key(j: number): string {
    const key = this.text(this.lineAt(2, j));
    return key.charCodeAt(0) === QUOTE ? (JSON.parse(key) as string) : key;
  }

  /** A line with its newline, as text without it. */
  private text(line: Uint8Array): string {
    return Buffer.from(line.buffer, line.byteOffset, line.length).toString('utf8', 0, Math.max(0, line.length - 1));
  }

  private lineAt(column: 0 | 1 | 2, j: number): Uint8Array {
    const bytes = this.columns[column];
    const ends = (this.ends[column] ??= endsOf(bytes, this.count));
    const start = j === 0 ? 0 : ends[j - 1]! + 1;
    // An empty line is its newline alone: nothing to keep.
    return ends[j] === start ? bytes.subarray(start, start) : bytes.subarray(start, ends[j]! + 1);
  }
}

/** Where each of the first `count` lines of `bytes` ends (the offset of its newline). */
function endsOf(bytes: Uint8Array, count: number): Uint32Array {
  const ends = new Uint32Array(count);
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let at = 0;
  for (let j = 0; j < count; j++) {
    const end = buffer.indexOf(NEWLINE, at);
    if (end === -1) throw new Error(`a bucket's send lines end after ${j} of ${count}`);
    ends[j] = end;
    at = end + 1;
  }
  return ends;
}
