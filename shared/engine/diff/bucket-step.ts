// The engine's per-bucket step, run on the engine thread (after the partition step) while the main thread sends the
// previous bucket: merges each profile's rows across segments, diffs it against what Braze was
// last sent, and says what to send (plus `null` membership for profiles that left). A profile's
// fingerprint is taken over the very JSON that would be sent, so "changed" means "Braze would get
// something else".
import type { ExportDefinition } from '../../exports/schema';
import { BucketFiles, ROW_SPILLS } from '../spill/bucket-files';
import { SpilledProfiles } from '../spill/spilled-profiles';
import { readEarlyRecords, readEarlyRows, type EarlyRecords } from '../early-send/records';
import { identityOf, mergePartials, type MergedProfile } from '../profile/merge';
import { BrazeObjectWriter } from '../profile/object-writer';
import { decodeRow } from '../spill/spill-codec';
import { spilledRowTyping, type PartialProfile, type RowMapper, type TableColumns } from '../profile/row-mapper';
import { ObjectBytes, type HandedObjects } from '../thread/object-bytes';
import { handOver, type Handed, type RingWriter } from '../thread/shared-ring';
import { emptyBucketCounts, type BucketCounts, type PreparedBucket, type ToSend } from '../thread/protocol';
import { fingerprintBytes } from '../hash/fingerprint';
import { parseBucketState, type BucketState } from '../state/state-entries';
import { parseStateLine, stateLine, stateLineKey, type BucketHeader, type StateEntry } from '../state/state-line';
import { StateBytes } from '../state/state-bytes';

export interface BucketSettings {
  def: ExportDefinition;
  definitionFp: string;
  fullSync: boolean;
  tempDir: string;
  /** The segment whose profiles were sent while reading (-1: none). */
  earlySegment: number;
  /** The run this is an attempt of. */
  runId: string;
  tableColumns: TableColumns;
}

export class BucketStep {
  /** Per segment index: how its spilled rows are mapped. */
  private readonly mappers: RowMapper[];
  /** Per segment index: its mapped columns' types (segments with the same map the same tokens alike). */
  private readonly typing: string[];
  private readonly digestSeed: number;
  private readonly writer: BrazeObjectWriter;
  /** The rows each reading thread spilled. */
  private readonly spills: BucketFiles[];

  constructor(
    private readonly settings: BucketSettings,
    /** Where the objects to send go to the main thread. */
    private readonly ring: RingWriter,
    /** Attribute omissions of the bucket's profiles sent while reading. */
    private readonly earlyOmitted: (bucket: number) => Record<string, number>,
  ) {
    ({
      mappers: this.mappers,
      typing: this.typing,
      digestSeed: this.digestSeed,
    } = spilledRowTyping(settings.def, settings.tableColumns));
    this.writer = new BrazeObjectWriter(settings.def);
    this.spills = ROW_SPILLS.map((kind) => new BucketFiles(settings.tempDir, kind));
  }

  /** The bucket's spilled rows, indexed by profile in place (see spilled-profiles.ts). */
  private async indexRows(bucket: number): Promise<SpilledProfiles> {
    return new SpilledProfiles(await BucketFiles.readBytes(this.spills, bucket), this.digestSeed);
  }

  /**
   * Profile p merged from its spilled rows. When they all hold the same fields, under the same
   * column types, only the first is mapped: the others add nothing but their segments.
   */
  private mergedOf(rows: SpilledProfiles, p: number): MergedProfile {
    const alike = rows.segmentsIfAlike(p);
    if (alike === null || alike.some((s) => this.typing[s] !== this.typing[alike[0]!]))
      return mergePartials(this.partialsOf(rows, p));
    const row = decodeRow(rows.firstRowOf(p));
    const merged = mergePartials([this.mappers[row.seg]!.partialOf(row.fields)]);
    merged.segments = alike;
    return merged;
  }

  /** Profile p's spilled rows, mapped and typed as its segments' tables are. */
  private partialsOf(rows: SpilledProfiles, p: number): PartialProfile[] {
    return rows.rowsOf(p).map((line) => {
      const row = decodeRow(line);
      return this.mappers[row.seg]!.partialOf(row.fields);
    });
  }

  /** `state`: the bucket's state blob as read (null: none). */
  async prepare(bucket: number, state: Uint8Array | null): Promise<PreparedBucket> {
    const { writer } = this;
    const { definitionFp, tempDir } = this.settings;
    const rows = await this.indexRows(bucket);
    const early = await readEarlyRecords(tempDir, bucket);
    const previous = parseBucketState(state);
    const trustPrevious = previous.definition === definitionFp && !this.settings.fullSync;
    const sentByThisRun = previous.sentBy !== undefined && previous.sentBy === this.settings.runId;
    const kept: string[] = [];
    const counts = emptyBucketCounts();
    const refusedEarly: PreparedBucket['refusedEarly'] = [];
    // This run's own checkpoints (a first run sent them while reading) hold only profiles new to the export.
    const isNew = (before: StateEntry | undefined) => before === undefined || sentByThisRun;
    const sentEarlyToo = keepSentEarly(early, rows, previous, kept, counts, refusedEarly, isNew);
    const earlyRows = sentEarlyToo.size
      ? await readEarlyRows(
          tempDir,
          writer,
          this.settings.earlySegment,
          bucket,
          new Map([...sentEarlyToo].map(([key, e]) => [e.line, key])),
        )
      : null;
    const omitted: Record<string, number> = { ...this.earlyOmitted(bucket) };
    const header: BucketHeader = { definition: definitionFp, fields: writer.fields, membership: writer.membershipNames };
    const sends = new BucketSends(writer, previous);
    const { objects } = sends;
    const digestsTrusted = trustPrevious && !sentByThisRun;

    for (let p = 0; p < rows.count; p++) {
      const line = previous.entries.claim(rows, p);
      // A profile sent while reading can still have more rows (the same segment twice): merge them,
      // and send again only if that changes what Braze got.
      const earlier = sentEarlyToo.size ? sentEarlyToo.get(rows.keyOf(p)) : undefined;
      // Its rows unchanged since Braze took its object, under the same settings: unchanged, without
      // decoding, merging or writing anything, its state line kept as written (most profiles of a
      // change run: no string is made for them). A state line has a digest only if no value was
      // left out as invalid: such an object also depends on what Braze held before.
      const rowsDigest = earlier ? undefined : rows.digest(p);
      if (rowsDigest !== undefined && digestsTrusted && line !== -1 && previous.entries.rowsDigestIs(line, rowsDigest)) {
        counts.profiles++;
        counts.unchanged++;
        previous.entries.keepAsWritten(line);
        continue;
      }
      const key = rows.keyOf(p);
      const before = line === -1 ? undefined : previous.entries.entryAt(line);
      const merged = earlier ? mergePartials([earlyRows!.get(key)!, ...this.partialsOf(rows, p)]) : this.mergedOf(rows, p);
      const omissions = Object.keys(merged.omitted);
      if (!earlier) for (const attr of omissions) omitted[attr] = (omitted[attr] ?? 0) + 1;
      const digest = omissions.length ? undefined : rowsDigest;
      counts.profiles++;
      // Written straight into the bytes to send; taken back out below if it need not go.
      const start = objects.add(writer.profile(merged));
      const fp = fingerprintBytes(objects.buffer, start, objects.end);
      const identity = identityOf(merged);
      if (isNew(before)) counts.newProfiles++;
      if (earlier?.delivered && earlier.fp === fp) {
        objects.dropLast();
        counts.sent++;
        kept.push(stateLine(key, { identity, fp, heldFields: writer.heldFieldBits(merged) }));
      } else if (trustPrevious && before?.fp === fp) {
        objects.dropLast();
        // Found in a checkpoint of this very run (an earlier attempt sent it while reading): sent, not unchanged.
        if (sentByThisRun) counts.sent++;
        else counts.unchanged++;
        // Kept with its rows' digest, so the next run can take the short path above.
        kept.push(
          stateLine(key, digest !== undefined && before.heldFields !== undefined ? { ...before, rowsDigest: digest } : before),
        );
      } else sends.changed(key, merged, identity, fp, before, digest);
    }
    // What is left of the previous state (profiles sent while reading were taken out) left the export.
    for (const [key, before] of previous.entries.unclaimed()) sends.leaver(key, before);
    const keptBytes = new StateBytes((state?.length ?? 0) + early.stateText.length);
    previous.entries.writeKept(keptBytes);
    for (const line of kept) keptBytes.addText(line);
    const stateChanged = previous.definition !== definitionFp || early.stateText !== '' || early.undelivered.size > 0;
    // Into the ring in this order, the order the main thread reads them in.
    const toSend = sends.handOver(this.ring);
    return { bucket, header, toSend, kept: handOver(this.ring, keptBytes.take()), stateChanged, counts, omitted, refusedEarly };
  }
}

/** What a bucket sends: the objects, as bytes, each with its key and its state line either way. */
class BucketSends {
  readonly objects = new ObjectBytes();
  private readonly toSend: Omit<ToSend, 'objects'> = { keys: [], sentLines: [], beforeLines: [], leaving: [] };
  /**
   * Membership written under earlier settings that these do not write: withdrawn from every
   * profile that had it (they are all sent anyway: changed settings resend everything).
   */
  private readonly withdrawals: string;

  constructor(
    private readonly writer: BrazeObjectWriter,
    private readonly previous: BucketState,
  ) {
    this.withdrawals = writer.withdrawals(previous.membership);
  }

  /** A changed profile (its object is the last in `objects`): queued with what Braze must lose. */
  changed(
    key: string,
    merged: MergedProfile,
    identity: string,
    fp: string,
    before: StateEntry | undefined,
    rowsDigest: string | undefined,
  ): void {
    const { writer, previous, objects } = this;
    const heldFields = writer.heldFieldBits(merged, before, previous.fields);
    // Values emptied in CI since Braze got them are cleared (null, once); membership written
    // under earlier settings is withdrawn — at the same user, or the one it was known as before.
    const identityChanged = before !== undefined && before.identity !== identity;
    const extras = before && !identityChanged ? writer.clears(merged, before, previous.fields) + this.withdrawals : '';
    if (extras) {
      objects.dropLast();
      objects.add(writer.profile(merged, extras));
    }
    this.queue(
      key,
      stateLine(key, rowsDigest === undefined ? { identity, fp, heldFields } : { identity, fp, heldFields, rowsDigest }),
      before,
      0,
    );
    if (identityChanged) {
      objects.add(writer.leaver(before.identity, previous.membership));
      this.queue(key, '', undefined, 2);
    }
  }

  /** A profile that left every segment: its membership is removed. */
  leaver(key: string, before: StateEntry): void {
    this.objects.add(this.writer.leaver(before.identity, this.previous.membership));
    this.queue(key, '', before, 1);
  }

  handOver(ring: RingWriter): ToSend {
    return { objects: this.objects.handOver(ring), ...this.toSend };
  }

  /** Queues an object already added to `objects`. */
  private queue(key: string, sentLine: string, before: StateEntry | undefined, leaving: 0 | 1 | 2): void {
    const t = this.toSend;
    t.keys.push(key);
    t.sentLines.push(sentLine);
    t.beforeLines.push(before ? stateLine(key, before) : '');
    t.leaving.push(leaving);
  }
}

/** A profile sent while reading that has later rows too. */
interface SentEarly extends StateEntry {
  delivered: boolean;
  /** Its line among the bucket's records of profiles sent while reading. */
  line: number;
}

/**
 * Counts the bucket's profiles sent while reading and keeps their state lines as written (most of
 * them: one pass over the text, no work per profile). Taken out: profiles Braze did not take
 * (their previous state is kept, so the next run retries them) and profiles with later rows,
 * returned to be merged with those. Their keys leave `previous`, whose remainder is then what
 * left the export.
 */
function keepSentEarly(
  early: EarlyRecords,
  withSpilledRows: SpilledProfiles,
  previous: BucketState,
  kept: string[],
  counts: BucketCounts,
  refusedEarly: PreparedBucket['refusedEarly'],
  isNew: (before: StateEntry | undefined) => boolean,
): Map<string, SentEarly> {
  const withLaterRows = new Map<string, SentEarly>();
  const text = early.stateText;
  const eachNeedsLooking = early.recheck.size > 0 || early.undelivered.size > 0 || previous.entries.size > 0;
  let keepFrom = 0;
  let line = -1;
  for (let start = 0, end = text.indexOf('\n'); end !== -1; start = end + 1, end = text.indexOf('\n', start)) {
    line++;
    if (!eachNeedsLooking) {
      counts.profiles++;
      counts.sent++;
      counts.newProfiles++;
      continue;
    }
    const key = stateLineKey(text, start, end);
    const undelivered = early.undelivered.get(key);
    const hasLaterRows = early.recheck.has(key) && withSpilledRows.find(key) !== -1;
    if (!hasLaterRows) {
      const before = previous.entries.get(key);
      previous.entries.delete(key);
      if (isNew(before)) counts.newProfiles++;
      if (!undelivered) {
        counts.profiles++;
        counts.sent++;
        continue; // the line stays
      }
      counts.profiles++;
      if (before) kept.push(stateLine(key, before));
      if (undelivered.status === 'rejected') {
        counts.rejected++;
        refusedEarly.push({ key, reason: undelivered.reason });
      } else counts.failed++;
    } else withLaterRows.set(key, { ...parseStateLine(text.slice(start, end))[1], delivered: !undelivered, line });
    // The line leaves the text kept as written.
    if (start > keepFrom) kept.push(text.slice(keepFrom, start - 1));
    keepFrom = end + 1;
  }
  if (keepFrom < text.length) kept.push(text.slice(keepFrom, text.length - 1));
  return withLaterRows;
}
