// The bucket step's decisions, one profile at a time, over inputs already in memory (spilled rows,
// the previous state, what was sent early): unchanged, sent early and settled, or changed and sent;
// then the leavers. A profile's fingerprint is taken over the very JSON that would be sent, so
// "changed" means "Braze would get something else".
import { fingerprintBytes, sameFingerprint } from '../hash/fingerprint';
import type { LineObjectWriter } from '../profile/line-object';
import { identityOf, mergePartials, type MergedProfile } from '../profile/merge';
import type { BrazeObjectWriter } from '../profile/object-writer';
import type { PartialProfile } from '../profile/row-mapper';
import type { ByteRange } from '../spill/bucket-files';
import type { SpilledProfiles } from '../spill/spilled-profiles';
import type { BucketState } from '../state/state-entries';
import { stateLine, type StateEntry } from '../state/state-line';
import type { BucketCounts } from '../thread/protocol';
import { BucketSends, type SendBuffers } from './bucket-sends';
import type { SentEarly } from './early-settle';
import type { SpilledMerge } from './spilled-merge';

interface DiffSettings {
  definitionFp: string;
  fullSync: boolean;
  /** The run this is an attempt of: a state written by it is this run's own checkpoint. */
  runId: string;
}

interface DiffInputs {
  rows: SpilledProfiles;
  previous: BucketState;
  /** The books so far (the profiles sent early and settled): the diff counts on from them. */
  counts: BucketCounts;
  /** Profiles sent early that have later rows (see settleEarlySends), and their early objects as rows. */
  sentEarly: Map<string, SentEarly>;
  earlyRows: Map<string, PartialProfile> | null;
  /** Where the objects and send lines are written (used again: cleared first; absent: new ones). */
  buffers?: SendBuffers;
}

export interface DiffResult {
  counts: BucketCounts;
  /** State lines of profiles not sent now (besides the previous lines kept as written). */
  kept: string[];
  /** Values left out as invalid, by attribute, of the profiles merged here (the early send counted its own). */
  omitted: Record<string, number>;
  sends: BucketSends;
}

/** Whether a state entry belongs to a profile new to the export (this run's own checkpoints hold only those). */
export const isNewTo = (previous: BucketState, runId: string) => {
  const sentByThisRun = previous.sentBy !== undefined && previous.sentBy === runId;
  return (before: StateEntry | undefined) => before === undefined || sentByThisRun;
};

export function diffBucket(
  merge: SpilledMerge,
  writer: BrazeObjectWriter,
  settings: DiffSettings,
  inputs: DiffInputs,
  /** Writes the objects of profiles of alike rows straight from their bytes (absent: every object from strings). */
  lines?: LineObjectWriter,
): DiffResult {
  const { rows, previous, counts, sentEarly } = inputs;
  const trustPrevious = previous.definition === settings.definitionFp && !settings.fullSync;
  const sentByThisRun = previous.sentBy !== undefined && previous.sentBy === settings.runId;
  const digestsTrusted = trustPrevious && !sentByThisRun;
  const isNew = isNewTo(previous, settings.runId);
  const result: DiffResult = { counts, kept: [], omitted: {}, sends: new BucketSends(writer, previous, inputs.buffers) };
  const { kept, omitted, sends } = result;
  const { objects } = sends;
  const plainKey: ByteRange = { bytes: rows.bytes, from: 0, to: 0 };

  for (let p = 0; p < rows.count; p++) {
    const line = previous.entries.claim(rows, p);
    // A profile sent early can still have more rows (the same segment twice): merge them, and send
    // again only if that changes what Braze got.
    const earlyKey = sentEarly.size ? rows.keyOf(p) : undefined;
    const earlier = earlyKey !== undefined ? sentEarly.get(earlyKey) : undefined;
    // Its rows unchanged since Braze took its object, under the same settings: unchanged, without
    // decoding, merging or writing anything, its state line kept as written (most profiles of a
    // change run: no string is made for them). A state line has a digest only if no value was
    // left out as invalid: such an object also depends on what Braze held before.
    if (!earlier && digestsTrusted && line !== -1 && previous.entries.rowsDigestOf(line, rows, p)) {
      counts.profiles++;
      counts.unchanged++;
      previous.entries.keepAsWritten(line);
      continue;
    }
    const rowsDigest = earlier ? undefined : rows.digest(p);
    const before = line === -1 ? undefined : previous.entries.entryAt(line);
    counts.profiles++;
    if (isNew(before)) counts.newProfiles++;
    // Written straight into the bytes to send; taken back out below if it need not go. From the
    // row's bytes when it can be (then nothing was left out), else merged and mapped from strings.
    let merged: MergedProfile | null = null;
    let start = objects.end;
    const fromLine = !earlier && lines !== undefined && merge.writeAlike(rows, p, lines, objects);
    if (!fromLine) {
      merged = earlier
        ? mergePartials([inputs.earlyRows!.get(earlyKey!)!, ...merge.partialsOf(rows, p)])
        : merge.mergedOf(rows, p);
      if (!earlier) for (const attr of Object.keys(merged.omitted)) omitted[attr] = (omitted[attr] ?? 0) + 1;
      start = objects.add(writer.profile(merged));
    }
    const digest = merged && Object.keys(merged.omitted).length ? undefined : rowsDigest;
    const fp = fingerprintBytes(objects.buffer, start, objects.end);
    // New to the export and written from its line (most of a first run): sent, its lines written from the bytes.
    if (fromLine && before === undefined && rows.plainKey(p, plainKey)) {
      sends.changedNewPlain(plainKey, lines!.identifier, fp, lines!.heldFields, digest);
      continue;
    }
    const key = earlyKey ?? rows.keyOf(p);
    const identity = merged ? identityOf(merged) : lines!.identity;
    if (earlier?.delivered && earlier.fp === fp) {
      objects.dropLast();
      counts.sent++;
      kept.push(stateLine(key, { identity, fp, heldFields: writer.heldFieldBits(merged!) }));
    } else if (trustPrevious && before !== undefined && sameFingerprint(before.fp, fp, objects.buffer, start, objects.end)) {
      objects.dropLast();
      // Found in a checkpoint of this very run (an earlier attempt sent it early): sent, not unchanged.
      if (sentByThisRun) counts.sent++;
      else counts.unchanged++;
      // Kept with its rows' digest, so the next run can take the short path above, and with this
      // release's kind of fingerprint (one an earlier release took matched: the same object).
      const entry = before.fp === fp ? before : { ...before, fp };
      kept.push(
        stateLine(key, digest !== undefined && entry.heldFields !== undefined ? { ...entry, rowsDigest: digest } : entry),
      );
    } else if (merged === null && before === undefined) sends.changedNew(key, identity, fp, lines!.heldFields, digest);
    // What Braze holds of a profile it took early is that object (the state may have no line of it
    // yet): its identity withdrawn should the later rows move it, its values cleared, its line kept
    // should Braze not take the new one.
    else
      sends.changed(
        key,
        merged ?? merge.mergedOf(rows, p),
        identity,
        fp,
        before ?? (earlier?.delivered ? earlier : undefined),
        digest,
      );
  }
  // What is left of the previous state (profiles sent early were taken out) left the export.
  for (const [key, before] of previous.entries.unclaimed()) sends.leaver(key, before);
  return result;
}
