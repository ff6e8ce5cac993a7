// The engine's per-bucket step, run on the engine thread (after the partition step) while the main
// thread sends the previous bucket: reads the bucket's spilled rows and what was sent early, settles
// the early sends (early-settle.ts), diffs every profile against what Braze was last sent
// (bucket-diff.ts), and hands the objects to send and the state lines to keep to the main thread.
import { rmSync } from 'node:fs';
import type { ExportDefinition } from '../../exports/schema';
import { noEarlyRecords, readEarlyRecords, readEarlyRows, type EarlyRecords } from '../early-send/records';
import { LineObjectWriter } from '../profile/line-object';
import { BrazeObjectWriter } from '../profile/object-writer';
import type { PartialProfile, TableColumns } from '../profile/row-mapper';
import { BucketFiles, readFileIntoSync, ROW_SPILLS } from '../spill/bucket-files';
import { readInto, ReusedMemory } from '../spill/reused-memory';
import { SpilledProfiles } from '../spill/spilled-profiles';
import { StateBytes } from '../state/state-bytes';
import { parseBucketState, type BucketState } from '../state/state-entries';
import type { BucketHeader } from '../state/state-line';
import type { BucketRings, PreparedBucket } from '../thread/protocol';
import { handOverLines } from '../thread/send-lines';
import { diffBucket, isNewTo, type DiffResult } from './bucket-diff';
import { sendBuffers, type SendBuffers } from './bucket-sends';
import { settleEarlySends, type SentEarly, type SettledEarly } from './early-settle';
import { SpilledMerge } from './spilled-merge';

/**
 * How long this thread waits for room in the object ring before handing a prepared bucket's
 * objects over as fresh memory instead. At 10 M profiles (two cores) a third of the buckets found
 * no room: each was a block of up to 8 MB allocated here and freed on the main thread, and the
 * threads' allocators kept ~50 MB of them in pieces. The room comes back as Braze answers the
 * objects before, a batch at a time (BucketOutcomes), and nothing it waits for waits for this
 * thread: a bucket's last objects, held for the next bucket's to fill a batch, are copied out of
 * the ring, and no bucket is asked for before the last early checkpoint's mark (BucketPipeline).
 * Longer, something holds the ring (Braze retrying a batch).
 * The state lines do not wait: they are kept until the bucket's state is written, and waiting for
 * them put the bucket step a bucket's checkpoint behind sending (a 10 M run waited ~70 s in all).
 */
const ROOM_WAIT_MS = 5000;

interface BucketSettings {
  def: ExportDefinition;
  definitionFp: string;
  fullSync: boolean;
  tempDir: string;
  /** The segment whose profiles were sent early (-1: none). */
  earlySegment: number;
  /** The run this is an attempt of. */
  runId: string;
  tableColumns: TableColumns;
}

export class BucketStep {
  private readonly merge: SpilledMerge;
  private readonly writer: BrazeObjectWriter;
  private readonly lines: LineObjectWriter;
  /** Where each bucket's objects and send lines are written, bucket after bucket. */
  private readonly buffers: SendBuffers;
  /** The rows each reading thread spilled. */
  private readonly spills: BucketFiles[];
  /** The spill bytes, the state blob and their indexes, bucket after bucket. */
  private readonly memory = new ReusedMemory();
  /** The state lines a bucket keeps, bucket after bucket. */
  private readonly kept = new StateBytes();

  constructor(
    private readonly settings: BucketSettings,
    /** Where the objects to send, and the state lines, go to the main thread. */
    private readonly rings: BucketRings,
    /** Attribute omissions of the bucket's profiles sent early. */
    private readonly earlyOmitted: (bucket: number) => Record<string, number>,
  ) {
    this.merge = new SpilledMerge(settings.def, settings.tableColumns);
    this.writer = new BrazeObjectWriter(settings.def);
    this.lines = new LineObjectWriter(settings.def, this.writer);
    this.buffers = sendBuffers();
    this.spills = ROW_SPILLS.map((kind) => new BucketFiles(settings.tempDir, kind));
  }

  /** `stateFile`: where the bucket's state blob was downloaded to (removed once read), or null: none. */
  async prepare(bucket: number, stateFile: string | null): Promise<PreparedBucket> {
    const { settings, memory } = this;
    const spilled = BucketFiles.readBytesSync(this.spills, bucket, readInto(memory, 'spill'));
    const rows = new SpilledProfiles(spilled, this.merge.digestSeed, memory);
    // Nothing sent early (a change run, a continuation): no files of it to look for, three a bucket.
    const early = settings.earlySegment < 0 ? noEarlyRecords() : await readEarlyRecords(settings.tempDir, bucket, memory);
    const state = stateFile === null ? null : readAndRemove(stateFile, memory);
    const previous = parseBucketState(state, memory);
    const settled = settleEarlySends(early, rows, previous.entries, isNewTo(previous, settings.runId));
    const earlyRows = await this.earlyRowsOf(bucket, settled.withLaterRows);
    const inputs = { rows, previous, counts: settled.counts, sentEarly: settled.withLaterRows, earlyRows, buffers: this.buffers };
    const diff = diffBucket(this.merge, this.writer, settings, inputs, this.lines);
    return this.handOver(bucket, { previous, early, settled, diff });
  }

  /** The early objects of profiles with later rows, as rows of the segment read last, to merge with those. */
  private async earlyRowsOf(bucket: number, withLaterRows: Map<string, SentEarly>): Promise<Map<string, PartialProfile> | null> {
    if (!withLaterRows.size) return null;
    const keysByLine = new Map([...withLaterRows].map(([key, e]) => [e.line, key]));
    return readEarlyRows(this.settings.tempDir, this.writer, this.settings.earlySegment, bucket, keysByLine, this.memory);
  }

  /** The prepared bucket: objects into their ring, the state lines (of what is sent, then kept) into theirs, in the order the main thread reads them. */
  private handOver(
    bucket: number,
    parts: { previous: BucketState; early: EarlyRecords; settled: SettledEarly; diff: DiffResult },
  ): PreparedBucket {
    const { previous, early, settled, diff } = parts;
    const { writer } = this;
    const header: BucketHeader = {
      definition: this.settings.definitionFp,
      fields: writer.fields,
      membership: writer.membershipNames,
    };
    const keptBytes = this.kept;
    keptBytes.clear(); // empty already, unless the bucket before failed halfway
    previous.entries.writeKept(keptBytes);
    for (const line of settled.kept) keptBytes.addText(line);
    for (const line of diff.kept) keptBytes.addText(line);
    const omitted: Record<string, number> = { ...this.earlyOmitted(bucket) };
    for (const [attr, n] of Object.entries(diff.omitted)) omitted[attr] = (omitted[attr] ?? 0) + n;
    const stateChanged = previous.definition !== header.definition || early.stateText !== '' || early.undelivered.size > 0;
    const toSend = diff.sends.handOver(this.rings, ROOM_WAIT_MS);
    const kept = handOverLines(this.rings.state, keptBytes);
    // Trusted only under the same settings and for the same profiles (the run pins its snapshot).
    const outcome = previous.writtenBy;
    const doneBefore =
      outcome?.run === this.settings.runId &&
      previous.definition === header.definition &&
      outcome.counts.profiles === diff.counts.profiles
        ? outcome
        : null;
    return {
      bucket,
      header,
      toSend,
      kept,
      stateChanged,
      counts: diff.counts,
      omitted,
      refusedEarly: settled.refused,
      doneBefore,
    };
  }
}

/** A downloaded state blob's bytes, read into `memory`; the file goes (a run's temp files would otherwise hold every bucket's state). */
function readAndRemove(file: string, memory: ReusedMemory): Buffer {
  try {
    return readFileIntoSync(file, readInto(memory, 'state'));
  } finally {
    rmSync(file, { force: true });
  }
}
