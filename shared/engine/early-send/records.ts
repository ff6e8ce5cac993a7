// What was sent while reading (see offers.ts), in temp files per bucket, read back by the bucket step
// on the engine thread.
import type { Outcome } from '../../braze/client';
import { BucketFiles } from '../spill/bucket-files';
import { SEP, tokenText } from '../spill/spill-codec';

/** Per bucket: the state line of each profile sent while reading. */
export const STATE_LINES = 'sent';
/** Profiles Braze did not take: status, reason, key. */
export const UNDELIVERED = 'unsent';

/** A bucket's profiles sent while reading. */
export interface EarlyRecords {
  /** Their state lines, each ending in a newline ('' = none). */
  stateText: string;
  /** The ones Braze did not take, by key. */
  undelivered: Map<string, { status: Exclude<Outcome['status'], 'sent'>; reason: string }>;
}

export async function readEarlyRecords(tempDir: string, bucket: number): Promise<EarlyRecords> {
  const undelivered: EarlyRecords['undelivered'] = new Map();
  await new BucketFiles(tempDir, UNDELIVERED).read(bucket, (line) => {
    const a = line.indexOf(SEP);
    const b = line.indexOf(SEP, a + 1);
    undelivered.set(tokenText(line.slice(b + 1))!, { status: line.slice(0, a) as 'failed' | 'rejected', reason: tokenText(line.slice(a + 1, b)) ?? '' });
  });
  return { stateText: await new BucketFiles(tempDir, STATE_LINES).readText(bucket), undelivered };
}
