// The per-bucket send and checkpoint pipeline: buckets are prepared (read, merged, diffed) on the
// engine thread a couple ahead of the one being sent. Their objects flow into one sender, so
// batches run on across bucket boundaries instead of draining at each. A bucket's state is written
// as soon as Braze has answered for all of its objects, and checkpoints stay in bucket order.
import path from 'node:path';
import { NOT_SENT_STOPPING, type BrazeClient } from '../../braze/client';
import { MAX_OBJECTS_PER_REQUEST, type Outcome } from '../../braze/batch';
import type { EarlyRefusals, SyncStateStore } from '../state/sync-state';
import { addBucketCounts, emptyBucketCounts, type BucketCounts } from '../thread/protocol';
import { MAX_OUTCOME_REFUSAL_CHARS, parseStateLine, type BucketOutcome } from '../state/state-line';
import type { EarlySender } from '../send/early-sender';
import type { LastCheckpoint } from '../send/early-checkpoints';
import type { RunBooks } from './progress';
import type { EngineThreads } from './engine-threads';
import { StagedBuckets, type Prepared } from './staged-buckets';
import type { Weighing, WeighedRun } from './weighing';
import { BatchSender } from '../send/batch-sender';
import { BUCKETS_UNDER_WAY, BucketsUnderWay } from './buckets-under-way';
import { BucketOutcomes, countsOf, recordOutcomes } from '../send/bucket-outcomes';
import { objectAt } from '../thread/object-bytes';
import { sameFingerprint } from '../hash/fingerprint';
import type { SendLines } from '../thread/send-lines';
import { ROW_SPILLS, removeBucketFiles } from '../spill/bucket-files';
import { EARLY_SEND_KINDS } from '../early-send/records';

/** Buckets being prepared on the engine thread while one is sent: enough to keep the thread busy. */
const BUCKETS_PREPARED_AHEAD = 2;

interface PipelineParts {
  threads: EngineThreads;
  state: SyncStateStore;
  braze: BrazeClient;
  books: RunBooks;
  definitionFp: string;
  /** Batches in flight at once (the request budget paces them). */
  concurrency: number;
  /** Asked before every object: true = send nothing more (cancel, lease lost); in-flight batches are still answered and recorded. */
  shouldStop?: () => boolean;
  /** Called before each bucket's state is written; throws when this worker may no longer write (lease lost). */
  beforeCheckpoint?: () => Promise<void>;
  /** Asked before a bucket's objects go, with the requests they need: false = stop before it (see EngineInput). */
  beforeBucket?: (requests: number) => Promise<boolean>;
  /**
   * The last checkpoint of what was sent early: once written, the checkpoints are listed, to be
   * removed once every bucket's state is written. No bucket is asked of the engine thread
   * before it has marked what that checkpoint holds (see EarlyCheckpoints.final). Buckets are sent,
   * written and listed done meanwhile: a bucket's state holds its early lines, so a successor sends
   * nothing more for the checkpoint's being late than it would for a kill before it.
   */
  lastEarlyCheckpoint: LastCheckpoint;
  /** The run's temp folder: state blobs are downloaded there for the engine thread. */
  tempDir: string;
  /**
   * The export had no state before this attempt: the only state blobs are the checkpoints of what
   * this attempt sent early, whose lines its own temp files hold (the engine thread reads those).
   * Its buckets' state is then not asked for: a 404 each, a signed request a bucket on the main
   * thread, and once the last checkpoint was written, its lines downloaded again (22 MB in a wide
   * 1 M first run) for the engine thread to read beside the same lines.
   */
  noState: boolean;
  /** The run this is an attempt of: what an earlier attempt of it sent early and Braze refused is not sent again. */
  runId: string;
}

export class BucketPipeline {
  private readonly pending: number[];
  private readonly preparing: Promise<Prepared>[] = [];
  /** The run was stopped mid-way (see PipelineParts.shouldStop). */
  stopped = false;
  private prepareNext = 0;
  /** Where the buckets come from: merged and diffed on the engine thread, or (weighed first) as they were set aside. */
  private source = (bucket: number): Promise<Prepared> => this.prepareFresh(bucket);
  private readonly sender: BatchSender<{ bucket: BucketOutcomes; index: number }>;
  /** Progress reports after each batch, one after another. */
  private reports: Promise<void> = Promise.resolve();
  /** Buckets still waiting for Braze's answers. */
  private readonly unanswered = new Set<BucketOutcomes>();
  /**
   * The last bucket's checkpoint: its state and the run's record written, and every bucket's before
   * it. Not the last checkpoint of what was sent early: a wide 1 M first run's (22 MB of state
   * lines, ~0.5 s on two cores) held sending up once five buckets waited for their record.
   */
  private checkpointed: Promise<void> = Promise.resolve();
  /** The last bucket joined to the run's books (its record may still be being written). */
  private inBooks: Promise<void> = Promise.resolve();
  /** Buckets sent and their state not yet written, and the run row that lists them done. */
  private readonly underWay: BucketsUnderWay;
  /** Braze's answers to the buckets sent last, oldest first (BUCKETS_UNDER_WAY − 1 of them). */
  private readonly lastAnswered: Promise<unknown>[] = [];
  /** Removals of the temp files of buckets whose state is written (see send), or set aside while weighed. */
  private readonly tempRemoved: Promise<void>[] = [];
  /** The checkpoints of what was sent early, listed once the last is written (null: the listing failed). */
  private earlyCheckpoints: Promise<string[] | null> = Promise.resolve([]);
  /**
   * The kinds of temp file a bucket may have: those of sending early only where this attempt did;
   * none once a weighed run's buckets are set aside (theirs went then).
   */
  private tempKinds: readonly string[] = ROW_SPILLS;

  constructor(private readonly parts: PipelineParts) {
    const { counts, segments } = parts.books.progress;
    this.underWay = new BucketsUnderWay(counts.rowsRead, Object.keys(segments).length, parts.braze.requestsPerSecond);
    const done = parts.books.bucketsDone;
    this.pending = Array.from({ length: parts.books.progress.buckets.total }, (_, b) => b).filter((b) => !done.has(b));
    this.sender = new BatchSender(parts.braze, parts.concurrency, (items, outcomes) => {
      items.forEach((item, j) => item.bucket.take(item.index, outcomes[j]!));
      this.reports = this.reports.then(() => parts.books.report());
      // Awaited after the last bucket; a run stopped before (a failed checkpoint) never awaits it.
      this.reports.catch(() => undefined);
    });
    // Once sending fails (a revoked key…), no more outcomes will come: stop waiting for them.
    this.sender.failed.catch((e: unknown) => {
      for (const b of this.unanswered) b.fail(e);
    });
  }

  /** Sends every bucket not done yet; false when it stopped early (time box) to be continued. */
  async run(early: EarlySender | null, shouldYield?: () => boolean): Promise<boolean> {
    // Once the last checkpoint of what was sent early is written, no more can be: they are listed
    // while the buckets go (on one core, listing them at the end took the run's last ~0.1 s).
    // Where nothing was sent early and there was no state, there are none: not even listed.
    if (!this.parts.noState || early)
      this.earlyCheckpoints = this.parts.lastEarlyCheckpoint.written
        .then(() => this.parts.state.earlyCheckpointNames())
        .catch(() => null);
    if (early) this.tempKinds = [...ROW_SPILLS, ...EARLY_SEND_KINDS];
    // Preparing starts while the last objects sent early are still under way.
    this.prepareAhead();
    if (early) await this.afterEarlySend(early);
    for (let i = 0; i < this.pending.length; i++) {
      if (shouldYield?.() || this.stopped) return this.stopHere();
      const received = await this.preparing.shift()!;
      const requests = received.prepared.doneBefore ? 0 : Math.ceil(received.objects.ends.length / MAX_OBJECTS_PER_REQUEST);
      if (requests > 0 && this.parts.beforeBucket && !(await this.parts.beforeBucket(requests))) {
        // Not sent, not checkpointed: the continuation prepares and sends this bucket whole.
        received.release();
        received.releaseState();
        return this.stopHere();
      }
      this.prepareAhead();
      if (received.prepared.doneBefore) this.takeDoneBefore(received, received.prepared.doneBefore);
      else await this.send(received);
    }
    if (this.stopped) return this.stopHere();
    await this.sender.finish();
    await this.reports;
    await this.checkpointed;
    await Promise.all(this.tempRemoved);
    // Checkpoints of what was sent early — this attempt's, or an earlier killed one's — are in the
    // buckets now, every one of which is written: they go (a blob or two each: see
    // state/early-checkpoint-blobs.ts).
    await this.parts.lastEarlyCheckpoint.written;
    await this.parts.state.removeEarlyCheckpoints((await this.earlyCheckpoints) ?? undefined);
    return true;
  }

  /**
   * Before anything is sent: prepares every bucket and sets it aside for `weighing` to decide on.
   * 'send': run() then sends them as they were set aside; 'held': nothing was sent (the guard holds
   * the run, or not every bucket could be weighed); 'stopped': a cancel.
   */
  async weigh(weighing: Weighing, books: RunBooks): Promise<'send' | 'held' | 'stopped'> {
    const staged = new StagedBuckets(this.parts.tempDir);
    const tally = emptyBucketCounts();
    const objectCounts: number[] = [];
    let unweighed: WeighedRun['unweighed'] = null;
    this.prepareAhead();
    for (let i = 0; i < this.pending.length; i++) {
      if (this.parts.shouldStop?.()) {
        this.stopped = true;
        await this.dropPrepared();
        await Promise.all(this.tempRemoved);
        return 'stopped';
      }
      if (Date.now() > weighing.deadline) {
        unweighed = 'time';
        break;
      }
      const received = await this.preparing.shift()!;
      this.prepareAhead();
      if (!staged.fits(received)) {
        this.preparing.unshift(Promise.resolve(received)); // dropped below
        unweighed = 'disk';
        break;
      }
      objectCounts.push(weighBucket(received, tally, weighing));
      if (!(await staged.put(received))) {
        unweighed = 'disk';
        break;
      }
      // Set aside, the bucket's spill is read no more (it is sent from where it was set aside, or
      // held and read afresh by a later attempt): the disk it took is free for the buckets after it.
      this.tempRemoved.push(this.removeTempFiles(received.prepared.bucket));
    }
    await this.dropPrepared();
    await Promise.all(this.tempRemoved);
    const go = await weighing.decide({
      unweighed,
      counts: books.countsWith(tally),
      segments: books.progress.segments,
      objects: objectCounts.reduce((a, b) => a + b, 0),
      requests: requestsFor(objectCounts),
    });
    if (!go || unweighed) return 'held';
    this.source = (bucket) => staged.take(bucket);
    this.tempKinds = []; // each bucket's went once it was set aside
    this.prepareNext = 0;
    return 'send';
  }

  private prepareAhead(): void {
    while (this.preparing.length < BUCKETS_PREPARED_AHEAD && this.prepareNext < this.pending.length) {
      const prepared = this.source(this.pending[this.prepareNext++]!);
      prepared.catch(() => undefined); // awaited in turn
      this.preparing.push(prepared);
    }
  }

  /** A bucket's state blob downloaded, and the bucket merged and diffed against it on the engine thread. */
  private async prepareFresh(bucket: number): Promise<Prepared> {
    await this.parts.lastEarlyCheckpoint.marked; // see PipelineParts.lastEarlyCheckpoint
    const file = path.join(this.parts.tempDir, `state-${bucket}.tsv`);
    const { found, etag, early, refused } = this.parts.noState
      ? { found: false, etag: null, early: false, refused: null }
      : await this.parts.state.downloadBucket(bucket, file);
    return { ...(await this.parts.threads.prepare(bucket, found ? file : null)), etag, early, refused };
  }

  /** Should Braze not take some objects sent early, the buckets prepared meanwhile did not know: prepare them again. */
  private async afterEarlySend(early: EarlySender): Promise<void> {
    await early.finish();
    if (early.allDelivered) return;
    await this.dropPrepared();
    this.prepareNext = 0;
    this.prepareAhead();
  }

  /**
   * Stops before the buckets left (time box, stop, hourly cap), to be continued: what is under way is
   * answered and checkpointed, and the buckets being prepared are dropped once ready (their state
   * downloads land in the temp folder, which goes when the attempt ends, as does the last checkpoint
   * of what was sent early: it reads its lines from there).
   */
  private async stopHere(): Promise<false> {
    await this.sender.finish();
    await this.checkpointed;
    await this.parts.lastEarlyCheckpoint.written;
    await this.dropPrepared();
    return false;
  }

  /**
   * A bucket whose state is written, or that a weighed run set aside, is never prepared again by
   * this attempt: its temp files go (while the buckets after it are sent or weighed, not all at the
   * attempt's end, where on one core removing a 1 M-profile run's spill took ~0.1 s; its state
   * blob's download is gone already: the engine thread removes it once read). One left behind goes
   * with the folder.
   */
  private async removeTempFiles(bucket: number): Promise<void> {
    await removeBucketFiles(this.parts.tempDir, bucket, this.tempKinds).catch(() => undefined);
  }

  /**
   * The bucket's temp files go once its state is written and the last checkpoint of what was sent
   * early (which reads the bucket's state lines) is taken; beside the checkpoints, not in their way
   * (a change run's sending is a chain of them).
   */
  private removeTempFilesOnceWritten(bucket: number, stateWritten: Promise<boolean>): void {
    this.tempRemoved.push(
      Promise.all([stateWritten, this.parts.lastEarlyCheckpoint.written]).then(
        () => this.removeTempFiles(bucket),
        () => undefined,
      ),
    );
  }

  /** Each bucket being prepared is dropped as it comes: its room in the rings may be what the next one waits for. */
  private async dropPrepared(): Promise<void> {
    const drop = (p: Prepared) => {
      p.release();
      p.releaseState();
    };
    await Promise.all(this.preparing.splice(0).map((p) => p.then(drop, () => undefined)));
  }

  /**
   * Buckets join the run's books in order, each once its state is written (`commit`); the run's
   * record is written after, one write for the buckets that joined meanwhile (RunBooks.report).
   */
  private joinBooks(stateWritten: Promise<boolean>, commit: () => void): void {
    const previousInBooks = this.inBooks;
    this.inBooks = (async () => {
      await previousInBooks;
      await stateWritten;
      commit();
    })();
    this.inBooks.catch(() => undefined);
    const recorded = this.inBooks.then(() => this.parts.books.report(true));
    this.checkpointed = Promise.all([this.checkpointed, recorded]).then(() => undefined);
    this.checkpointed.catch(() => undefined); // awaited on a later turn or after the run
  }

  /**
   * A bucket whose state an earlier attempt of this run wrote, killed before its run row listed the
   * bucket done: nothing of it is sent again (its state holds what Braze took, and what Braze refused
   * it would refuse again), and it joins the run's books with the figures that attempt wrote beside
   * its state, as if the run row had listed it.
   */
  private takeDoneBefore(received: Prepared, outcome: BucketOutcome): void {
    received.release();
    received.releaseState();
    const { prepared } = received;
    const { books } = this.parts;
    const written = Promise.resolve(true);
    this.removeTempFilesOnceWritten(prepared.bucket, written);
    this.joinBooks(written, () => {
      books.rejectedBefore(outcome);
      books.commitBucket({ ...prepared, counts: countsOf(outcome), omitted: outcome.omitted });
    });
  }

  /** Queues a prepared bucket's objects, and its checkpoint once Braze has answered for all of them. */
  private async send({
    prepared,
    objects,
    releaseAnswered,
    release,
    lines,
    kept,
    releaseState,
    etag,
    early,
    refused,
  }: Prepared): Promise<void> {
    const count = objects.ends.length;
    // A killed worker's successor sends the buckets under way again: no object of this one goes
    // out until there is room for it (see BUCKETS_UNDER_WAY).
    const few = await this.underWay.room(count);
    const refusedBefore = refused?.sentBy === this.parts.runId && refused.byKey.size ? refused.byKey : null;
    // The objects Braze has answered give their room in the ring back while it answers the rest:
    // the engine thread may be waiting for it to hand the next bucket over (bucket-step.ts).
    const answered = new BucketOutcomes(count, releaseAnswered);
    this.unanswered.add(answered);
    void answered.all.then(
      () => {
        this.unanswered.delete(answered);
        release(); // Braze has answered for every object: their bytes are no longer needed
      },
      () => undefined,
    );
    let added = 0;
    for (let j = 0; j < count; j++) {
      if (this.parts.shouldStop?.()) {
        this.stopped = true;
        // Objects not yet on their way, here and held for a batch, are not sent; the bucket's
        // state keeps what Braze had for them, so a later run sends them.
        for (const held of this.sender.discardHeld()) held.bucket.take(held.index, NOT_SENT_STOPPING);
        for (let k = j; k < count; k++) answered.take(k, NOT_SENT_STOPPING);
        break;
      }
      const refusal = refusedBefore && refusedAgain(refusedBefore, lines, prepared.toSend.leaving, j, objectAt(objects, j));
      if (refusal) {
        answered.take(j, refusal);
        continue;
      }
      this.sender.add(objectAt(objects, j), { bucket: answered, index: j });
      added++;
      const wait = this.sender.room();
      if (wait) await wait;
    }
    // Unless they hold few objects, at most BUCKETS_UNDER_WAY buckets unanswered: the time box is
    // looked at between buckets, so sending must not run far ahead of it. The previous bucket's last
    // objects may still wait for a full batch (this one's objects refused again are not sent: not `count`).
    if (this.sender.held > added) this.sender.flush();
    // This bucket's last objects wait for the next bucket's to fill a batch: copied out of the ring,
    // so its room comes back as Braze answers the rest, whenever the next bucket comes (its
    // hand-over may be waiting for that room).
    for (const { bucket, index } of this.sender.copyHeld()) bucket.copiedFrom(index);
    if (!few && this.lastAnswered.length === BUCKETS_UNDER_WAY - 1) await this.lastAnswered[0];
    this.lastAnswered.push(answered.all);
    if (this.lastAnswered.length > BUCKETS_UNDER_WAY - 1) this.lastAnswered.shift();
    const { state, books, runId } = this.parts;
    const stateWritten = answered.all
      .then(async (outcomes) => {
        const writtenBy: BucketOutcome = { run: runId, counts: {}, omitted: prepared.omitted, refused: [], refusedTotal: 0 };
        let refusedChars = 0;
        const taken = recordOutcomes(prepared, lines, outcomes, (row) => {
          books.reject(row);
          writtenBy.refusedTotal++;
          refusedChars += row.profileId.length + row.reason.length;
          if (refusedChars <= MAX_OUTCOME_REFUSAL_CHARS) writtenBy.refused.push([row.profileId, row.reason]);
        });
        // Read from the checkpoints of what was sent early, the state is written even unchanged:
        // they are removed once every bucket's is.
        if (!prepared.stateChanged && count === 0 && !early) return false;
        await this.parts.beforeCheckpoint?.();
        writtenBy.counts = { ...prepared.counts };
        await state.writeBucket(prepared.bucket, { ...prepared.header, writtenBy }, [kept, ...taken], etag);
        return true;
      })
      .finally(releaseState);
    stateWritten.catch(() => undefined); // awaited below, after the previous checkpoint
    this.removeTempFilesOnceWritten(prepared.bucket, stateWritten);
    this.joinBooks(stateWritten, () => books.commitBucket(prepared));
    // Its room comes back once its state is written, not its record: a successor sends nothing of
    // what its state holds. The records, in order, may lag a few buckets without holding sending up
    // (see RECORDS_BEHIND).
    this.underWay.add(
      count,
      stateWritten.then(() => undefined),
      this.checkpointed,
    );
  }
}

/**
 * Adds a prepared bucket to the run's tally, as if Braze takes every object (a leaver's a removal,
 * any other a profile sent); returns the objects it sends. A bucket an earlier attempt of this run
 * sent (doneBefore) counts as that attempt left it, and sends nothing.
 */
function weighBucket(received: Prepared, tally: BucketCounts, weighing: Weighing): number {
  const { counts, toSend, doneBefore } = received.prepared;
  if (doneBefore) {
    addBucketCounts(tally, countsOf(doneBefore));
    return 0;
  }
  const count = received.objects.ends.length;
  const leavers = toSend.leaving.filter(Boolean).length;
  addBucketCounts(tally, counts);
  tally.sent += count - leavers;
  tally.removed += leavers;
  if (weighing.object) for (let j = 0; j < count; j++) weighing.object(objectAt(received.objects, j));
  return count;
}

/**
 * Requests that buckets of these object counts take, batched as send() batches them: batches of 75
 * run on across buckets, but a bucket with fewer objects than are still held from the buckets
 * before it flushes them in a batch that is not full.
 */
export function requestsFor(objectCounts: number[]): number {
  let held = 0;
  let requests = 0;
  for (const count of objectCounts) {
    requests += Math.floor((held + count) / MAX_OBJECTS_PER_REQUEST);
    held = (held + count) % MAX_OBJECTS_PER_REQUEST;
    if (held > count) {
      requests++;
      held = 0;
    }
  }
  return requests + (held > 0 ? 1 : 0);
}

/**
 * The object at `j` (`object`) is the very one Braze refused when an earlier attempt of this run
 * sent it early (same profile, same fingerprint, that attempt's release may have taken it a byte a
 * step): its refusal, with Braze's reason, instead of sending it again.
 */
export function refusedAgain(
  refused: EarlyRefusals['byKey'],
  lines: SendLines,
  leaving: number[],
  j: number,
  object: Uint8Array,
): Outcome | null {
  const refusal = refused.get(lines.key(j));
  if (!refusal || leaving[j]) return null;
  const fp = parseStateLine(lines.sentLine(j))[1].fp;
  return sameFingerprint(refusal.fp, fp, object, 0, object.length) ? { status: 'rejected', reason: refusal.reason } : null;
}
