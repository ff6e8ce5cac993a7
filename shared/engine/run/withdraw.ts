// The cleanup before an export lets go of its Braze destination (deleted, or detached from its
// connection): every profile the sync state says holds the export's membership gets it withdrawn
// (`null` for a list, `false` for booleans, under the names it was written with), at the
// destination it was written to, with that connection's key. What Braze did not take stays in the
// state, so a later cleanup tries it again.
import { Buffer } from 'node:buffer';
import type { BrazeClient } from '../../braze/client';
import { MAX_OBJECTS_PER_REQUEST, type Outcome } from '../../braze/batch';
import type { ExportDefinition } from '../../exports/schema';
import { BrazeObjectWriter } from '../profile/object-writer';
import { parseBucketState } from '../state/state-entries';
import { stateLine, stateLinesBytes } from '../state/state-line';
import type { SyncStateStore } from '../state/sync-state';
import { BatchSender } from '../send/batch-sender';

interface WithdrawInput {
  definition: ExportDefinition;
  state: SyncStateStore;
  braze: BrazeClient;
  /** Batches in flight at once (the request budget paces them); by default the client's (BrazeClient.requestsInFlight). */
  concurrency?: number;
  shouldStop?: () => boolean;
  /** The time box: checked between buckets; the caller continues from `nextBucket` in a later attempt. */
  shouldYield?: () => boolean;
  /** Where an earlier attempt left off, and what it counted. */
  startBucket?: number;
  counted?: WithdrawCounts;
  beforeCheckpoint?: () => Promise<void>;
  /**
   * Before a bucket is sent, with the requests it needs (the hourly cap reserves them): false = not
   * this hour; the attempt stops before the bucket, which is not checkpointed, and `capped` is set.
   */
  beforeBucket?: (requests: number) => Promise<boolean>;
  /**
   * The hourly cap ran out (while a bucket was sent): what was not sent then is not counted as
   * failed; the bucket keeps it and the attempt stops, to go on from the same bucket next hour.
   */
  capReached?: () => boolean;
  /** After each bucket's checkpoint: the counts so far and the bucket to continue from. */
  onProgress?: (counts: WithdrawCounts, nextBucket: number) => Promise<void> | void;
}

export interface WithdrawCounts {
  /** Profiles the state listed. */
  profiles: number;
  removed: number;
  removalsFailed: number;
  /** Profiles Braze refused the withdrawal of (e.g. the user no longer exists): dropped from the state. */
  rejected: number;
}

/**
 * The counts, and the bucket a later attempt continues from (null: every bucket is done); `capped`:
 * it stopped at the connection's hourly cap (the run waits for the next hour).
 */
export type WithdrawResult = WithdrawCounts & { nextBucket: number | null; capped?: boolean };

export async function withdrawAll(input: WithdrawInput): Promise<WithdrawResult> {
  const counts: WithdrawCounts = { profiles: 0, removed: 0, removalsFailed: 0, rejected: 0, ...input.counted };
  const manifest = await input.state.readManifest();
  if (!manifest) return { ...counts, nextBucket: null };
  const writer = new BrazeObjectWriter(input.definition);
  const first = input.startBucket ?? 0;
  for (let bucket = first; bucket < manifest.bucketCount; bucket++) {
    // At least one bucket an attempt, so every attempt moves on.
    if (input.shouldStop?.() || (bucket > first && input.shouldYield?.())) return { ...counts, nextBucket: bucket };
    const { bytes, etag } = await input.state.readBucket(bucket);
    if (bytes === null) continue;
    const previous = parseBucketState(bytes);
    const entries = [...previous.entries];
    const requests = Math.ceil(entries.length / MAX_OBJECTS_PER_REQUEST);
    // Not sent, not checkpointed: the next attempt (next hour) withdraws this bucket whole.
    if (requests > 0 && input.beforeBucket && !(await input.beforeBucket(requests)))
      return { ...counts, nextBucket: bucket, capped: true };
    const outcomes = new Array<Outcome>(entries.length);
    const sender = new BatchSender<number>(input.braze, input.concurrency ?? input.braze.requestsInFlight, (items, answered) =>
      items.forEach((i, k) => (outcomes[i] = answered[k]!)),
    );
    for (let i = 0; i < entries.length; i++) {
      sender.add(Buffer.from(writer.leaver(entries[i]![1].identity, previous.membership)), i);
      const room = sender.room();
      if (room) await room;
    }
    await sender.finish();
    // The cap ran out mid-bucket: what was not sent stays in the bucket, uncounted, and is tried
    // again from this same bucket (not counted as failed: nothing about it failed).
    const capped = !!input.capReached?.();
    const kept: string[] = [];
    entries.forEach(([key, entry], i) => {
      const outcome = outcomes[i]!;
      if (outcome.status === 'failed' && capped) return void kept.push(stateLine(key, entry));
      counts.profiles++;
      if (outcome.status === 'sent') counts.removed++;
      else if (outcome.status === 'rejected') counts.rejected++;
      else {
        counts.removalsFailed++;
        kept.push(stateLine(key, entry));
      }
    });
    await input.beforeCheckpoint?.();
    await input.state.writeBucket(
      bucket,
      { definition: previous.definition, fields: previous.fields, membership: previous.membership },
      [stateLinesBytes(kept)],
      etag,
    );
    await input.onProgress?.(counts, capped ? bucket : bucket + 1);
    if (capped) return { ...counts, nextBucket: bucket, capped: true };
  }
  return { ...counts, nextBucket: null };
}
