// What was sent early (see offers.ts), in temp files per bucket, read back by the bucket step
// on the engine thread.
import type { Outcome } from '../../braze/batch';
import type { BrazeObjectWriter } from '../profile/object-writer';
import type { PartialProfile } from '../profile/row-mapper';
import { BucketFiles } from '../spill/bucket-files';
import { freshMemory, readInto } from '../spill/reused-memory';
import { SEP, tokenText } from '../spill/spill-codec';

/**
 * Per bucket: the state line of each profile sent early, and the object sent (same order; an empty
 * line for a profile of another segment, which no later row can need: see EarlyOffers.offerOther).
 */
export const STATE_LINES = 'sent';
export const SENT_OBJECTS = 'sentobj';
/** Keys of later rows whose profile may have been sent already: the bucket step merges them. */
export const RECHECK = 'recheck';
/** Profiles Braze did not take: status, reason, key. */
export const UNDELIVERED = 'unsent';
/** Every kind of file sending early keeps per bucket. */
export const EARLY_SEND_KINDS = [STATE_LINES, SENT_OBJECTS, RECHECK, UNDELIVERED] as const;

/** A bucket's profiles sent early. */
export interface EarlyRecords {
  /** Their state lines, each ending in a newline ('' = none). */
  stateText: string;
  /** Keys of rows spilled because their profile may have been sent early already. */
  recheck: Set<string>;
  /** The ones Braze did not take, by key. */
  undelivered: Map<string, { status: Exclude<Outcome['status'], 'sent'>; reason: string }>;
}

/** A bucket's records where nothing was sent early. */
export const noEarlyRecords = (): EarlyRecords => ({ stateText: '', recheck: new Set(), undelivered: new Map() });

/** `memory`: where each file is read to before it is decoded (the bucket step's, bucket after bucket). */
export async function readEarlyRecords(tempDir: string, bucket: number, memory = freshMemory()): Promise<EarlyRecords> {
  const into = readInto(memory, 'early');
  const recheck = new Set<string>();
  await new BucketFiles(tempDir, RECHECK).read(bucket, (line) => recheck.add(tokenText(line)!), into);
  const undelivered: EarlyRecords['undelivered'] = new Map();
  await new BucketFiles(tempDir, UNDELIVERED).read(
    bucket,
    (line) => {
      const a = line.indexOf(SEP);
      const b = line.indexOf(SEP, a + 1);
      undelivered.set(tokenText(line.slice(b + 1))!, {
        status: line.slice(0, a) as 'failed' | 'rejected',
        reason: tokenText(line.slice(a + 1, b)) ?? '',
      });
    },
    into,
  );
  return { stateText: await new BucketFiles(tempDir, STATE_LINES).readText(bucket, into), recheck, undelivered };
}

/** The objects sent early at the given lines of the bucket's state lines, as rows of the segment read last. */
export async function readEarlyRows(
  tempDir: string,
  writer: BrazeObjectWriter,
  segment: number,
  bucket: number,
  keysByLine: ReadonlyMap<number, string>,
  memory = freshMemory(),
): Promise<Map<string, PartialProfile>> {
  const rows = new Map<string, PartialProfile>();
  let line = 0;
  await new BucketFiles(tempDir, SENT_OBJECTS).read(
    bucket,
    (json) => {
      const key = keysByLine.get(line++);
      if (key !== undefined) rows.set(key, writer.rowOf(json, key, segment));
    },
    readInto(memory, 'early'),
  );
  return rows;
}
