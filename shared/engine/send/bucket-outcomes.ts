// What Braze answered for one bucket's objects: collected as batches come back (in any order),
// then counted into the bucket's counts and turned into the state lines of the profiles it sent.
import { MAX_OBJECTS_PER_REQUEST, type Outcome } from '../../braze/batch';
import { emptyBucketCounts, type BucketCounts, type PreparedBucket, type RejectedRow } from '../thread/protocol';
import type { BucketOutcome } from '../state/state-line';
import type { SendLines } from '../thread/send-lines';

/** Braze's answers for one bucket's objects, as they come in batch by batch. */
export class BucketOutcomes {
  private readonly outcomes: Outcome[];
  private missing: number;
  private resolve!: (outcomes: Outcome[]) => void;
  private reject!: (e: unknown) => void;
  /** Resolves once every object of the bucket has its outcome. */
  readonly all: Promise<Outcome[]>;

  /** Objects from the first whose bytes are no longer needed (answered, or copied out), and how many of them were reported. */
  private done = 0;
  private reported = 0;
  /** Objects from here on were copied out (see copiedFrom). */
  private copied: number;

  /**
   * `bytesDone(count)`: the first `count` objects' bytes are no longer needed (answered, or copied
   * out), called as that count grows by a batch or more, while Braze answers the rest.
   */
  constructor(
    size: number,
    private readonly bytesDone?: (count: number) => void,
  ) {
    this.copied = size;
    this.outcomes = new Array<Outcome>(size);
    this.missing = size;
    this.all = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.all.catch(() => undefined); // awaited by whoever needs it
    if (size === 0) this.resolve(this.outcomes);
  }

  take(index: number, outcome: Outcome): void {
    this.outcomes[index] = outcome;
    if (--this.missing === 0) return this.resolve(this.outcomes);
    if (index === this.done) this.advance();
  }

  /** The objects from `index` on were copied out (held for a batch): their bytes are no longer needed, answered or not. */
  copiedFrom(index: number): void {
    this.copied = Math.min(this.copied, index);
    this.advance();
  }

  private advance(): void {
    if (!this.bytesDone) return;
    const size = this.outcomes.length;
    while (this.done < this.copied && this.outcomes[this.done] !== undefined) this.done++;
    const count = this.done >= this.copied ? size : this.done;
    if (count === this.reported || (count < size && count - this.reported < MAX_OBJECTS_PER_REQUEST)) return;
    this.reported = count;
    this.bytesDone(count);
  }

  /** Sending failed: a batch that failed has no outcomes, so stop waiting for them. */
  fail(e: unknown): void {
    this.reject(e);
  }
}

/** A bucket's counts as an earlier attempt of the run wrote them beside its state (only the counts this version keeps). */
export function countsOf(outcome: BucketOutcome): BucketCounts {
  const counts = emptyBucketCounts();
  for (const k of Object.keys(counts) as (keyof BucketCounts)[]) counts[k] = Number(outcome.counts[k]) || 0;
  return counts;
}

/** A profile Braze refused, as the rejected-rows report lists it (no row of the snapshot: the profile's). */
export const refusedRow = (profileId: string, reason: string): RejectedRow => ({
  segment: '',
  partition: '',
  record: '',
  profileId,
  reason,
});

/**
 * Counts a bucket's outcomes into its counts and returns the state lines of the profiles it sent,
 * as bytes (views of `lines`, each piece whole lines): what Braze now has, or (not delivered) what
 * it had before, so the next run tries again.
 */
export function recordOutcomes(
  prepared: PreparedBucket,
  lines: SendLines,
  outcomes: Outcome[],
  reject: (row: RejectedRow) => void,
): Uint8Array[] {
  const totals = prepared.counts;
  const { leaving } = prepared.toSend;
  const refused = (profileId: string, reason: string) => reject(refusedRow(profileId, reason));
  let everyOneTaken = true;
  outcomes.forEach((outcome, j) => {
    if (leaving[j]) {
      everyOneTaken = false;
      if (outcome.status === 'sent') totals.removed++;
      else if (outcome.status === 'failed') totals.removalsFailed++;
      else refused(lines.key(j), `removal refused: ${outcome.reason}`);
      return;
    }
    if (outcome.status === 'sent') {
      totals.sent++;
      return;
    }
    everyOneTaken = false;
    if (outcome.status === 'rejected') {
      totals.rejected++;
      refused(lines.key(j), outcome.reason);
    } else totals.failed++;
  });
  for (const r of prepared.refusedEarly) refused(r.key, r.reason);
  // Most buckets: every profile's line once Braze took it, as one piece.
  if (everyOneTaken) return outcomes.length ? [lines.allSent] : [];
  return linesKept(lines, leaving, outcomes);
}

/** Object by object: the line once Braze took it, else the line before (a leaver's only if its removal failed: tried again next run). */
function linesKept(lines: SendLines, leaving: number[], outcomes: Outcome[]): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  outcomes.forEach((outcome, j) => {
    const line = leaving[j]
      ? outcome.status === 'failed'
        ? lines.beforeAt(j)
        : null
      : outcome.status === 'sent'
        ? lines.sentAt(j)
        : lines.beforeAt(j);
    if (!line?.length) return;
    // Lines side by side (profiles Braze took, one after another) go as one piece.
    const last = pieces[pieces.length - 1];
    if (last && last.buffer === line.buffer && last.byteOffset + last.length === line.byteOffset)
      pieces[pieces.length - 1] = new Uint8Array(last.buffer, last.byteOffset, last.length + line.length);
    else pieces.push(line);
  });
  return pieces;
}
