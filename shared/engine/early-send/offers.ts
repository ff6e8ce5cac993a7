// Early send: sending profiles while the snapshot is still being read (the one term for it in code,
// comments and docs; identifiers say `early`). When a run has nothing to diff against (a new
// export, changed settings, a full sync), every profile goes to Braze anyway, so waiting for the
// whole snapshot before the first request wastes the reading time. The largest segment is read
// last; a row of it whose profile no other segment has (and that was not sent already) is final
// as it stands: it is sent at once instead of being spilled. Its bucket gets the profile's sync
// state line at once (kept as written unless Braze did not take the profile), so the bucket step
// does no work per profile for most of them.
//   offers.ts — EarlyOffers (engine thread, as rows are read): decides, writes the object and its state line.
//   send/early-sender.ts — EarlySender (main thread): sends, and notes what Braze did not take.
//   records.ts — readEarlyRecords, readEarlyRows (engine thread, per bucket): what was sent and what
//   Braze said; the objects of the few profiles that turn out to have later rows, to merge them.
// Rows of the other segments that waited (read for their keys first) are taken in after the segment
// read last, and a row whose profile has no other row anywhere is sent then too (offerOther).
// Key filters only say "surely not" or "maybe": a "maybe" takes the ordinary spill-and-merge path.
import { MAX_OBJECTS_PER_REQUEST } from '../../braze/batch';
import type { ExportDefinition } from '../../exports/schema';
import { identityOf, mergePartials } from '../profile/merge';
import { LineObjectWriter } from '../profile/line-object';
import { BrazeObjectWriter } from '../profile/object-writer';
import { fingerprintBytes } from '../hash/fingerprint';
import { stateLine } from '../state/state-line';
import type { PartialProfile, RowMapper } from '../profile/row-mapper';
import { ObjectBytes, type HandedObjects } from '../thread/object-bytes';
import { BucketFiles, MAX_OPEN_FILES } from '../spill/bucket-files';
import { textToken } from '../spill/spill-codec';
import type { RingWriter } from '../thread/shared-ring';
import type { EarlyBatch } from '../thread/protocol';
import { KeyFilter } from './key-filter';
import { RECHECK, SENT_OBJECTS, STATE_LINES } from './records';

const NO_BYTES = Buffer.alloc(0);

/** A row offered, as the CSV scanner read it: its spill line (bytes[0, length)) and its table's mapper. */
export interface OfferedLine {
  bytes: Buffer;
  length: number;
  mapper: RowMapper;
  segment: number;
}

/**
 * A row offered to be sent early: its bucket, its profile key's fnv1a32, its spill line's digest and
 * its mapping (made only if it is sent), and its spill line, if the CSV scanner read it.
 */
export interface OfferedRow {
  bucket: number;
  hash: number;
  rowsDigest: () => string;
  partial: () => PartialProfile;
  line: OfferedLine | null;
}

/** What sending early knows of the profile keys read so far. */
interface KeyFilters {
  /** Keys of the other segments' rows (read first). */
  elsewhere: KeyFilter;
  /** Keys seen in more than one row of the other segments. */
  twice: KeyFilter;
  /** Keys of every row of the segment read last, sent or not. */
  seenLast: KeyFilter;
}

/**
 * Keys of the other segments held until the filters are sized: the bytes read with them tell the
 * bytes a row takes. Sized for 50 bytes a row whatever the rows, a wide snapshot's filters (~250
 * bytes a row) were five times too large: 14 MB, past the core's cache, where 3 MB would do; sized
 * to the rows read, the key pass of a wide 1 M first run on two cores took ~0.12 s less.
 */
const SAMPLE_ROWS = 65_536;
/**
 * The most bytes a row is taken to take where the sample did not fill (the other segments hold
 * fewer rows with a key, or there are none): too few rows to tell the width of the segment read last.
 */
const ASSUMED_ROW_BYTES = 50;
/**
 * Each of the three kinds of file written here keeps this many buckets' files open (the engine
 * thread's spill keeps MAX_OPEN_FILES): opened and closed at every flush of a bucket's buffer, they
 * cost the engine thread ~5 % of its time while it sent early (a wide 1 M first run on two cores).
 */
const OPEN_FILES_PER_KIND = MAX_OPEN_FILES / 2;

export class EarlyOffers {
  /** Made once the sample is full, or at the first row offered (sizeFilters); released once reading is over. */
  private filters: KeyFilters | null = null;
  /** The keys noted before the filters were made. */
  private sample: { hashes: Int32Array; count: number } | null = { hashes: new Int32Array(SAMPLE_ROWS), count: 0 };
  /**
   * Bytes of the other segments read so far (PartitionStep, after each chunk: up to a chunk behind
   * the keys noted, so a row seems smaller and the filters come out larger, not smaller).
   */
  keyPassBytes = 0;
  private readonly stateLines: BucketFiles;
  private readonly sentObjects: BucketFiles;
  private readonly recheck: BucketFiles;
  private readonly writer: BrazeObjectWriter;
  private readonly lines: LineObjectWriter;
  private readonly omitted = new Map<number, Record<string, number>>();
  private readonly batchObjects = new ObjectBytes();
  private batch: { buckets: number[]; keys: string[] } = { buckets: [], keys: [] };
  private stopped = false;
  /** Profiles handed over to be sent so far. */
  sent = 0;

  /** The key filters' memory (0 until they are made): what their sizing chose. */
  get filterBytes(): number {
    const f = this.filters;
    return f ? f.elsewhere.bytes + f.twice.bytes + f.seenLast.bytes : 0;
  }

  constructor(
    tempDir: string,
    def: ExportDefinition,
    /** The CSV bytes of the other segments, and of the segment read last. */
    private readonly expected: { otherBytes: number; tableBytes: number },
    bucketCount: number,
    /** Where batches go to the main thread. */
    private readonly ring: RingWriter,
    private readonly onBatch: (batch: EarlyBatch<HandedObjects>) => void,
  ) {
    this.stateLines = new BucketFiles(tempDir, STATE_LINES, bucketCount, OPEN_FILES_PER_KIND);
    this.sentObjects = new BucketFiles(tempDir, SENT_OBJECTS, bucketCount, OPEN_FILES_PER_KIND);
    this.recheck = new BucketFiles(tempDir, RECHECK, bucketCount, OPEN_FILES_PER_KIND);
    this.writer = new BrazeObjectWriter(def);
    this.lines = new LineObjectWriter(def, this.writer);
  }

  /** A row of another segment was read (its profile key's fnv1a32): its profile may need merging. */
  noteOtherSegment(hash: number): void {
    const f = this.filters;
    if (f === null) {
      const sample = this.sample!;
      sample.hashes[sample.count++] = hash;
      if (sample.count === SAMPLE_ROWS) this.sizeFilters();
      return;
    }
    if (f.elsewhere.mightHave(hash)) f.twice.add(hash);
    else f.elsewhere.add(hash);
  }

  /**
   * Makes the filters, sized by the bytes a row of the other segments took so far (a wrong guess
   * costs speed, never correctness: too small, more profiles take the ordinary path), and notes the
   * keys held until then.
   */
  private sizeFilters(): KeyFilters {
    const sample = this.sample;
    if (!sample) throw new Error('the key filters were released');
    this.sample = null;
    const sampled = sample.count > 0 ? Math.max(1, this.keyPassBytes / sample.count) : ASSUMED_ROW_BYTES;
    // The segment read last is taken to have rows as wide as the others' (a CI export maps the same
    // columns in each): narrower, its filter fills and more of its rows take the ordinary path.
    const rowBytes = sample.count === SAMPLE_ROWS ? sampled : Math.min(sampled, ASSUMED_ROW_BYTES);
    const otherRows = this.expected.otherBytes / rowBytes;
    const filters = (this.filters = {
      elsewhere: new KeyFilter(otherRows),
      // Fewer keys than rows repeat: half the size does.
      twice: new KeyFilter(otherRows / 2),
      seenLast: new KeyFilter(this.expected.tableBytes / rowBytes),
    });
    for (let i = 0; i < sample.count; i++) this.noteOtherSegment(sample.hashes[i]!);
    return filters;
  }

  /** Offers a row of the segment read last: true when it is going to be sent (do not spill it). */
  offer(row: OfferedRow): boolean {
    const { elsewhere, seenLast } = this.filters ?? this.sizeFilters();
    const { hash } = row;
    // Other segments were all read before this one: a profile they may hold was never sent here.
    if (elsewhere.mightHave(hash)) {
      seenLast.add(hash);
      return false;
    }
    if (seenLast.mightHave(hash)) {
      this.recheck.write(row.bucket, textToken(row.partial().key)); // rare: a key seen twice here, or a false "maybe"
      return false;
    }
    seenLast.add(hash);
    if (this.stopped) return false;
    return this.send(row, true);
  }

  /**
   * Offers a row of another segment, taken in once the segment read last is complete: true when it
   * is going to be sent. Only a profile with no other row anywhere is: one row among the other
   * segments (their keys were all noted first) and none in the segment read last. So no later row
   * can turn up for it either: its object is not kept (see send).
   */
  offerOther(row: OfferedRow): boolean {
    const f = this.filters ?? this.sizeFilters();
    if (this.stopped || f.twice.mightHave(row.hash) || f.seenLast.mightHave(row.hash)) return false;
    return this.send(row, false);
  }

  /**
   * Writes a profile of one row as its object and state line, and batches it to be sent: the
   * object straight from the spill line's bytes where it can be, else from the row's mapping. The
   * object is kept in the bucket's file for a later row of the profile to merge with (`keep`), else
   * an empty line stands in its place.
   */
  private send({ bucket, rowsDigest, partial, line }: OfferedRow, keep: boolean): true {
    this.sent++;
    const lines = this.lines;
    if (line && lines.write(line.bytes, 0, line.length, line.mapper, [line.segment])) {
      this.sentObjects.writeBytes(bucket, lines.bytes, 0, keep ? lines.length : 0);
      const key = lines.keyOf(line.bytes);
      const fp = fingerprintBytes(lines.bytes, 0, lines.length);
      const state = { identity: lines.identity, fp, heldFields: lines.heldFields, rowsDigest: rowsDigest() };
      return this.batched(bucket, key, stateLine(key, state), lines.bytes, 0, lines.length);
    }
    return this.sendMapped(bucket, rowsDigest, partial(), keep);
  }

  /** send() for a row mapped from strings. */
  private sendMapped(bucket: number, rowsDigest: () => string, partial: PartialProfile, keep: boolean): true {
    const profile = mergePartials([partial]); // a profile of one row: nothing to merge
    const json = this.writer.profile(profile);
    if (partial.omitted) {
      let tally = this.omitted.get(bucket);
      if (!tally) this.omitted.set(bucket, (tally = {}));
      for (const attr of Object.keys(partial.omitted)) tally[attr] = (tally[attr] ?? 0) + 1;
    }
    const { bytes, start, end } = this.keptObject(bucket, json, keep);
    // Counted as delivered unless the main thread notes otherwise.
    // With the digest of its row's spill line: an unchanged row next run is unchanged at once. Not
    // with omitted values: the object then also depends on what Braze held before.
    // (Not `{ ...entry, rowsDigest }`: spreading made a garbage-heavy object per profile, half this method's time.)
    const identity = identityOf(profile);
    const fp = fingerprintBytes(bytes, start, end);
    const heldFields = this.writer.heldFieldBits(profile);
    const state = partial.omitted ? { identity, fp, heldFields } : { identity, fp, heldFields, rowsDigest: rowsDigest() };
    return this.batched(bucket, partial.key, stateLine(partial.key, state), bytes, start, end);
  }

  /**
   * The object's bytes, written to its bucket's file of objects first when it is kept (its
   * fingerprint is then taken over the bytes written there), else after an empty line.
   */
  private keptObject(bucket: number, json: string, keep: boolean): { bytes: Uint8Array; start: number; end: number } {
    if (keep) {
      this.sentObjects.write(bucket, json);
      return this.sentObjects.lastLine;
    }
    this.sentObjects.writeBytes(bucket, NO_BYTES, 0, 0);
    const bytes = Buffer.from(json);
    return { bytes, start: 0, end: bytes.length };
  }

  /** The profile's state line written to its bucket, its object (bytes [start, end)) batched to be sent. */
  private batched(bucket: number, key: string, line: string, bytes: Uint8Array, start: number, end: number): true {
    this.stateLines.write(bucket, line);
    this.batchObjects.addBytes(bytes, start, end);
    this.batch.buckets.push(bucket);
    this.batch.keys.push(key);
    if (this.batchObjects.count === MAX_OBJECTS_PER_REQUEST) this.flush();
    return true;
  }

  /**
   * A checkpoint mark: every object written so far goes to the main thread now, and the state lines
   * of every profile sent so far are in the files; returns their sizes per bucket.
   */
  mark(bucketCount: number): number[] {
    this.flush();
    this.stateLines.flushAll();
    return this.stateLines.sizes(bucketCount);
  }

  /** Stop sending (the time box is near): later rows take the spill path. */
  stop(): void {
    this.stopped = true;
  }

  finish(): void {
    this.filters = null; // the bucket step does not need them
    this.sample = null;
    this.flush();
    this.stateLines.close();
    this.sentObjects.close();
    this.recheck.close();
  }

  /** Closes the files kept open (a later write opens its file again): the run ended or failed. */
  closeFiles(): void {
    this.stateLines.closeFiles();
    this.sentObjects.closeFiles();
    this.recheck.closeFiles();
  }

  /** Attribute omissions of the bucket's profiles sent early, by attribute. */
  omittedIn(bucket: number): Record<string, number> {
    return this.omitted.get(bucket) ?? {};
  }

  private flush(): void {
    if (this.batchObjects.count === 0) return;
    this.onBatch({ objects: this.batchObjects.handOver(this.ring), ...this.batch });
    this.batch = { buckets: [], keys: [] };
  }
}
