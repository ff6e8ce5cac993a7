// Sending while the snapshot is still being read. When a run has nothing to diff against (a new
// export, changed settings, a full sync), every profile goes to Braze anyway, so waiting for the
// whole snapshot before the first request wastes the reading time. The largest segment is read
// last; a row of it whose profile no other segment has (and that was not sent already) is final
// as it stands: it is sent at once instead of being spilled. Its bucket gets the profile's sync
// state line at once (kept as written unless Braze did not take the profile), so the bucket step
// does no work per profile for most of them.
//   EarlyOffers (engine thread, while reading): decides, writes the object and its state line.
//   EarlySender (main thread): sends, and notes what Braze did not take.
//   readEarlyRecords, readEarlyRows (engine thread, per bucket): what was sent and what Braze
//   said; the objects of the few profiles that turn out to have later rows, to merge them.
// Key filters only say "surely not" or "maybe": a "maybe" takes the ordinary spill-and-merge path.
import type { BrazeClient, Outcome } from '../../braze/client';
import { MAX_OBJECTS_PER_REQUEST } from '../../braze/client';
import type { ExportDefinition } from '../../exports/schema';
import { BatchSender } from '../send/batch-sender';
import { BucketFiles } from '../spill/bucket-files';
import { KeyFilter, keyHash } from './key-filter';
import { ObjectBytes, objectAt, type HandedObjects, type ObjectList } from '../send/object-bytes';
import { fingerprintBytes } from '../diff/object-fingerprint';
import { BrazeObjectWriter, identityOf, mergePartials, type PartialProfile } from '../read/row-mapper';
import type { RingWriter } from '../thread/shared-ring';
import { SEP, textToken, tokenText } from '../spill/spill-codec';
import { stateLine } from '../diff/sync-state';

/** Objects ready to send, with the bucket and key of each. */
export interface EarlyBatch<Objects = ObjectList> {
  objects: Objects;
  buckets: number[];
  keys: string[];
}

/** Per bucket: the state line of each profile sent while reading, and the object sent (same order). */
const STATE_LINES = 'sent';
const SENT_OBJECTS = 'sentobj';
/** Keys of later rows whose profile may have been sent already: the bucket step merges them. */
const RECHECK = 'recheck';
/** Profiles Braze did not take: status, reason, key. */
const UNDELIVERED = 'unsent';

export class EarlyOffers {
  private readonly elsewhere: KeyFilter;
  private readonly alreadySent: KeyFilter;
  private readonly stateLines: BucketFiles;
  private readonly sentObjects: BucketFiles;
  private readonly recheck: BucketFiles;
  private readonly writer: BrazeObjectWriter;
  private readonly omitted = new Map<number, Record<string, number>>();
  private readonly batchObjects = new ObjectBytes();
  private batch: { buckets: number[]; keys: string[] } = { buckets: [], keys: [] };
  private stopped = false;

  constructor(
    tempDir: string,
    def: ExportDefinition,
    expected: { otherRows: number; tableRows: number },
    /** Where batches go to the main thread. */
    private readonly ring: RingWriter,
    private readonly onBatch: (batch: EarlyBatch<HandedObjects>) => void,
  ) {
    this.elsewhere = new KeyFilter(expected.otherRows);
    this.alreadySent = new KeyFilter(expected.tableRows);
    this.stateLines = new BucketFiles(tempDir, STATE_LINES);
    this.sentObjects = new BucketFiles(tempDir, SENT_OBJECTS);
    this.recheck = new BucketFiles(tempDir, RECHECK);
    this.writer = new BrazeObjectWriter(def);
  }

  /** A row of another segment was read: its profile may need merging. */
  noteOtherSegment(key: string): void {
    this.elsewhere.add(keyHash(key));
  }

  /** Offers a row of the segment read last: true when it is going to be sent (do not spill it). */
  offer(bucket: number, partial: PartialProfile): boolean {
    const hash = keyHash(partial.key);
    // Other segments were all read before this one: a profile they may hold was never sent here.
    if (this.elsewhere.mightHave(hash)) return false;
    if (this.alreadySent.mightHave(hash)) {
      this.recheck.write(bucket, textToken(partial.key));
      return false;
    }
    if (this.stopped) return false;
    this.alreadySent.add(hash);
    const profile = mergePartials([partial]); // a profile of one row: nothing to merge
    const json = this.writer.profile(profile);
    if (partial.omitted) {
      let tally = this.omitted.get(bucket);
      if (!tally) this.omitted.set(bucket, (tally = {}));
      for (const attr of Object.keys(partial.omitted)) tally[attr] = (tally[attr] ?? 0) + 1;
    }
    // The object goes to its bucket first, so its fingerprint is taken over the bytes written there.
    this.sentObjects.write(bucket, json);
    const { bytes, start, end } = this.sentObjects.lastLine;
    // Counted as delivered unless the main thread notes otherwise.
    this.stateLines.write(bucket, stateLine(partial.key, { identity: identityOf(profile), fp: fingerprintBytes(bytes, start, end) }));
    this.batchObjects.addBytes(bytes, start, end);
    this.batch.buckets.push(bucket);
    this.batch.keys.push(partial.key);
    if (this.batchObjects.count === MAX_OBJECTS_PER_REQUEST) this.flush();
    return true;
  }

  /** Stop sending (the time box is near): later rows take the spill path. */
  stop(): void {
    this.stopped = true;
  }

  finish(): void {
    this.flush();
    this.stateLines.close();
    this.sentObjects.close();
    this.recheck.close();
  }

  /** Attribute omissions of the bucket's profiles sent while reading, by attribute. */
  omittedIn(bucket: number): Record<string, number> {
    return this.omitted.get(bucket) ?? {};
  }

  private flush(): void {
    if (this.batchObjects.count === 0) return;
    this.onBatch({ objects: this.batchObjects.handOver(this.ring), ...this.batch });
    this.batch = { buckets: [], keys: [] };
  }
}

/** What a batch keeps of each profile until Braze answers: little, so it dies young. */
interface InFlight {
  bucket: number;
  key: string;
  /** The batch it came in, to release its bytes once Braze has answered for all of them. */
  batch: { left: number; release: () => void };
}

export class EarlySender {
  private readonly undelivered: BucketFiles;
  private readonly sender: BatchSender<InFlight>;
  private undeliveredCount = 0;

  constructor(tempDir: string, braze: BrazeClient, maxBatchesUnderWay: number) {
    this.undelivered = new BucketFiles(tempDir, UNDELIVERED);
    this.sender = new BatchSender(braze, maxBatchesUnderWay, (items, outcomes) => this.recordUndelivered(items, outcomes));
  }

  /** Sends a batch's objects; `release` is called once Braze has answered for all of them. */
  send(batch: EarlyBatch, release: () => void): void {
    const count = batch.buckets.length;
    const answered = { left: count, release };
    for (let i = 0; i < count; i++) this.sender.add(objectAt(batch.objects, i), { bucket: batch.buckets[i]!, key: batch.keys[i]!, batch: answered });
  }

  /** Backpressure for the reader: null, or a promise to wait for (and ask again) before reading on. */
  room(): Promise<void> | null {
    return this.sender.room();
  }

  /** Whether Braze took every object sent so far. */
  get allDelivered(): boolean {
    return this.undeliveredCount === 0;
  }

  /** Waits for every batch; throws the first sending failure. */
  async finish(): Promise<void> {
    await this.sender.finish();
    this.undelivered.close();
  }

  /** Waits for batches still under way, ignoring failures (the run is stopping anyway). */
  async settle(): Promise<void> {
    await this.sender.finish().catch(() => undefined);
  }

  private recordUndelivered(items: InFlight[], outcomes: Outcome[]): void {
    for (let i = 0; i < items.length; i++) {
      const { batch } = items[i]!;
      if (--batch.left === 0) batch.release();
      const outcome = outcomes[i]!;
      if (outcome.status === 'sent') continue;
      this.undeliveredCount++;
      this.undelivered.write(items[i]!.bucket, `${outcome.status}${SEP}${textToken(outcome.reason)}${SEP}${textToken(items[i]!.key)}`);
    }
  }
}

/** A bucket's profiles sent while reading. */
export interface EarlyRecords {
  /** Their state lines, each ending in a newline ('' = none). */
  stateText: string;
  /** Keys of rows spilled because their profile may have been sent while reading already. */
  recheck: Set<string>;
  /** The ones Braze did not take, by key. */
  undelivered: Map<string, { status: Exclude<Outcome['status'], 'sent'>; reason: string }>;
}

export async function readEarlyRecords(tempDir: string, bucket: number): Promise<EarlyRecords> {
  const recheck = new Set<string>();
  await new BucketFiles(tempDir, RECHECK).read(bucket, (line) => recheck.add(tokenText(line)!));
  const undelivered: EarlyRecords['undelivered'] = new Map();
  await new BucketFiles(tempDir, UNDELIVERED).read(bucket, (line) => {
    const a = line.indexOf(SEP);
    const b = line.indexOf(SEP, a + 1);
    undelivered.set(tokenText(line.slice(b + 1))!, { status: line.slice(0, a) as 'failed' | 'rejected', reason: tokenText(line.slice(a + 1, b)) ?? '' });
  });
  return { stateText: await new BucketFiles(tempDir, STATE_LINES).readText(bucket), recheck, undelivered };
}

/** The objects sent while reading at the given lines of the bucket's state lines, as rows of the segment read last. */
export async function readEarlyRows(tempDir: string, writer: BrazeObjectWriter, segment: number, bucket: number, keysByLine: ReadonlyMap<number, string>): Promise<Map<string, PartialProfile>> {
  const rows = new Map<string, PartialProfile>();
  let line = 0;
  await new BucketFiles(tempDir, SENT_OBJECTS).read(bucket, (json) => {
    const key = keysByLine.get(line++);
    if (key !== undefined) rows.set(key, writer.rowOf(json, key, segment));
  });
  return rows;
}
