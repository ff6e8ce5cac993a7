// The bucket step's first part when profiles were sent early (while the snapshot was read): what
// became of each, from the records the early sender left (early-send/records.ts).
import type { EarlyRecords } from '../early-send/records';
import type { SpilledProfiles } from '../spill/spilled-profiles';
import type { StateEntries } from '../state/state-entries';
import { parseStateLine, stateLine, stateLineKey, type StateEntry } from '../state/state-line';
import { emptyBucketCounts, type BucketCounts, type PreparedBucket } from '../thread/protocol';

/** A profile sent early that has later rows too: the diff merges them and sends again only if that changes it. */
export interface SentEarly extends StateEntry {
  delivered: boolean;
  /** Its line among the bucket's records of profiles sent early. */
  line: number;
}

export interface SettledEarly {
  /** The bucket's books so far: its profiles sent early, as sent, rejected or failed. */
  counts: BucketCounts;
  /** State lines to keep: the early lines as written (in runs), and the previous line of a profile Braze did not take. */
  kept: string[];
  refused: PreparedBucket['refusedEarly'];
  /** Profiles sent early with later rows, by key, left to the diff. */
  withLaterRows: Map<string, SentEarly>;
}

/**
 * Settles the bucket's profiles sent early, keeping their state lines as written (most of them: one
 * pass over the text, no work per profile). A profile Braze did not take keeps its previous state,
 * so the next run retries it. Every settled key is deleted from `previous`: it did not leave the
 * export, and the diff that follows must not take it for a leaver (the keys with later rows stay
 * for the diff to claim).
 */
export function settleEarlySends(
  early: EarlyRecords,
  spilled: SpilledProfiles,
  previous: StateEntries,
  isNew: (before: StateEntry | undefined) => boolean,
): SettledEarly {
  const settled: SettledEarly = { counts: emptyBucketCounts(), kept: [], refused: [], withLaterRows: new Map() };
  const { counts, kept } = settled;
  const text = early.stateText;
  const eachNeedsLooking = early.recheck.size > 0 || early.undelivered.size > 0 || previous.size > 0;
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
    const hasLaterRows = early.recheck.has(key) && spilled.find(key) !== -1;
    if (!hasLaterRows) {
      const before = previous.get(key);
      previous.delete(key);
      if (isNew(before)) counts.newProfiles++;
      counts.profiles++;
      if (!undelivered) {
        counts.sent++;
        continue; // the line stays
      }
      if (before) kept.push(stateLine(key, before));
      if (undelivered.status === 'rejected') {
        counts.rejected++;
        settled.refused.push({ key, reason: undelivered.reason });
      } else counts.failed++;
    } else settled.withLaterRows.set(key, { ...parseStateLine(text.slice(start, end))[1], delivered: !undelivered, line });
    // The line leaves the text kept as written.
    if (start > keepFrom) kept.push(text.slice(keepFrom, start - 1));
    keepFrom = end + 1;
  }
  if (keepFrom < text.length) kept.push(text.slice(keepFrom, text.length - 1));
  return settled;
}
