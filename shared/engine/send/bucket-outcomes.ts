// What Braze answered for one bucket's objects: collected as batches come back (in any order),
// then counted into the bucket's counts and turned into the state lines of the profiles it sent.
import type { Outcome } from '../../braze/client';
import type { PreparedBucket, RejectedRow } from '../thread/protocol';

/** Braze's answers for one bucket's objects, as they come in batch by batch. */
export class BucketOutcomes {
  private readonly outcomes: Outcome[];
  private missing: number;
  private resolve!: (outcomes: Outcome[]) => void;
  private reject!: (e: unknown) => void;
  /** Resolves once every object of the bucket has its outcome. */
  readonly all: Promise<Outcome[]>;

  constructor(size: number) {
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
    if (--this.missing === 0) this.resolve(this.outcomes);
  }

  /** Sending failed: a batch that failed has no outcomes, so stop waiting for them. */
  fail(e: unknown): void {
    this.reject(e);
  }
}

/**
 * Counts a bucket's outcomes into its counts and returns the state lines of the profiles it sent:
 * what Braze now has, or (not delivered) what it had before, so the next run tries again.
 */
export function recordOutcomes(prepared: PreparedBucket, outcomes: Outcome[], reject: (row: RejectedRow) => void): string[] {
  const totals = prepared.counts;
  const lines: string[] = [];
  const { keys, sentLines, beforeLines, leaving } = prepared.toSend;
  const refused = (profileId: string, reason: string) => reject({ segment: '', partition: '', record: '', profileId, reason });
  outcomes.forEach((outcome, j) => {
    const key = keys[j]!;
    if (leaving[j]) {
      if (outcome.status === 'sent') totals.removed++;
      else if (outcome.status === 'failed') {
        totals.removalsFailed++;
        if (beforeLines[j]) lines.push(beforeLines[j]!); // a leaver's: try the removal again next run
      } else refused(key, `removal refused: ${outcome.reason}`);
      return;
    }
    if (outcome.status === 'sent') {
      totals.sent++;
      lines.push(sentLines[j]!);
      return;
    }
    if (beforeLines[j]) lines.push(beforeLines[j]!);
    if (outcome.status === 'rejected') {
      totals.rejected++;
      refused(key, outcome.reason);
    } else totals.failed++;
  });
  for (const r of prepared.refusedEarly) refused(r.key, r.reason);
  return lines;
}
