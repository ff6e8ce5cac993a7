// The run's books: what a run has done so far (counts, requests, buckets done, timings), kept as
// buckets are committed, and reported to the caller at most once a second (or at once, at a
// checkpoint), one report at a time so a slow write never lands after a newer one.
import { failureReasonsAfter, type BrazeClient } from '../../braze/client';
import type { ExportDefinition } from '../../exports/schema';
import { addBucketCounts, emptyBucketCounts, type BucketCounts, type PreparedBucket } from '../thread/protocol';
import { MAX_REPORT_ROWS } from '../read/partition-books';
import type { PartitionSummary, RejectedRow } from '../thread/protocol';
import type { BucketOutcome } from '../state/state-line';
import { refusedRow } from '../send/bucket-outcomes';

export interface RunCounts extends BucketCounts {
  rowsRead: number;
}

/** What a run has done so far; persisted at each checkpoint and shown by GET /api/runs/{id}. */
export interface RunProgress {
  phase: 'reading' | 'sending' | 'done';
  counts: RunCounts;
  requests: { sent: number; retried: number; rateLimited: number };
  segments: Record<string, { rows: number }>;
  omittedAttributes: Record<string, number>;
  buckets: { total: number; done: number[] };
  bucketCounts: BucketCounts;
  /**
   * Seconds spent reading the snapshot and sending, in this attempt, and from when it began
   * reading to its first request to Braze (null: none yet), to a hundredth.
   */
  timings: { readingSeconds: number; sendingSeconds: number; firstRequestSeconds: number | null };
  warnings: string[];
  /** Why objects failed (Braze's answer, or the network's), over every attempt: the first few distinct reasons. */
  failureReasons: string[];
}

/** What an earlier attempt of the run finished (resume). */
export type ResumeFrom = Pick<RunProgress, 'buckets' | 'bucketCounts' | 'requests' | 'omittedAttributes'> &
  Partial<Pick<RunProgress, 'failureReasons'>>;

/** Array custom attributes keep this many values by default in Braze. */
const BRAZE_ARRAY_LIMIT = 25;
const PROGRESS_EVERY_MS = 1000;

const seconds = (from: number) => Math.round((Date.now() - from) / 100) / 10;

export class RunBooks {
  readonly progress: RunProgress;
  readonly rejectedRows: RejectedRow[] = [];
  rejectedRowsTotal = 0;
  private readonly bucketTotals: BucketCounts;
  private readonly done: Set<number>;
  private rowsRejected = 0;
  private readonly started = Date.now();
  private sendingStarted = 0;
  private lastReport = 0;
  private reporting: Promise<void> = Promise.resolve();
  /** The write waiting for the one under way (null: none waits). */
  private nextWrite: Promise<void> | null = null;
  /** Nothing is reported while a run is weighed (run/weighing.ts): a run held then records no progress. */
  muted = false;

  constructor(
    def: ExportDefinition,
    bucketCount: number,
    private readonly braze: BrazeClient,
    private readonly resumeFrom: ResumeFrom | undefined,
    private readonly onProgress: ((progress: RunProgress) => Promise<void> | void) | undefined,
  ) {
    this.progress = {
      phase: 'reading',
      counts: { rowsRead: 0, ...emptyBucketCounts() },
      requests: { sent: 0, retried: 0, rateLimited: 0 },
      segments: Object.fromEntries(def.segments.map((s) => [s, { rows: 0 }])),
      omittedAttributes: { ...(resumeFrom?.omittedAttributes ?? {}) },
      buckets: { total: bucketCount, done: [...(resumeFrom?.buckets.done ?? [])] },
      bucketCounts: emptyBucketCounts(),
      timings: { readingSeconds: 0, sendingSeconds: 0, firstRequestSeconds: null },
      warnings: [],
      failureReasons: failureReasonsAfter(resumeFrom?.failureReasons, braze),
    };
    this.bucketTotals = { ...emptyBucketCounts(), ...resumeFrom?.bucketCounts };
    this.done = new Set(this.progress.buckets.done);
    if (def.membership.format === 'list' && def.segments.length > BRAZE_ARRAY_LIMIT) {
      this.progress.warnings.push(
        `The export has ${def.segments.length} segments: Braze keeps ${BRAZE_ARRAY_LIMIT} values of an array attribute by default, so longer membership lists are cut; raise the limit in Braze or use membership.format "boolean"`,
      );
    }
  }

  /** Buckets finished by an earlier attempt (or by this one). */
  get bucketsDone(): ReadonlySet<number> {
    return this.done;
  }

  /** A profile Braze refused: into the rejected-rows report (bounded; the total keeps counting). */
  reject = (row: RejectedRow): void => {
    this.rejectedRowsTotal++;
    if (this.rejectedRows.length < MAX_REPORT_ROWS) this.rejectedRows.push(row);
  };

  /** Live rows read while the snapshot is being read. */
  reading(rowsRead: number, segmentRows: Record<string, number>): void {
    this.progress.counts.rowsRead = rowsRead;
    for (const [segment, rows] of Object.entries(segmentRows)) this.progress.segments[segment] = { rows };
    void this.report().catch(() => undefined);
  }

  /** Braze answered a request sent early: the requests sent move on (reported at most once a second). */
  answered(): void {
    if (Date.now() - this.lastReport >= PROGRESS_EVERY_MS) void this.report().catch(() => undefined);
  }

  /** What Braze refused of a bucket an earlier attempt of this run sent (BucketOutcome): into the report as then. */
  rejectedBefore(outcome: BucketOutcome): void {
    for (const [profileId, reason] of outcome.refused) this.reject(refusedRow(profileId, reason));
    this.rejectedRowsTotal += outcome.refusedTotal - outcome.refused.length;
  }

  /** The snapshot is read: rows that never became a profile count as rejected profiles, so the sum still holds. */
  async readingDone(read: PartitionSummary): Promise<void> {
    this.progress.counts.rowsRead = read.rowsRead;
    for (const [segment, rows] of Object.entries(read.segmentRows)) this.progress.segments[segment] = { rows };
    this.rowsRejected = read.rowsRejected;
    this.rejectedRowsTotal += read.rowsRejected;
    for (const row of read.rejectedRows) this.rejectedRows.push(row);
    this.combine();
    this.progress.phase = 'sending';
    this.progress.timings.readingSeconds = seconds(this.started);
    this.sendingStarted = Date.now();
    await this.report(true);
  }

  /** A bucket's checkpoint: its counts and omissions join the run's only now (the record with them at the next report). */
  commitBucket(prepared: PreparedBucket): void {
    addBucketCounts(this.bucketTotals, prepared.counts);
    const omitted = this.progress.omittedAttributes;
    for (const [attr, n] of Object.entries(prepared.omitted)) omitted[attr] = (omitted[attr] ?? 0) + n;
    this.done.add(prepared.bucket);
    this.progress.buckets.done = [...this.done].sort((a, b) => a - b);
    this.progress.timings.sendingSeconds = seconds(this.sendingStarted);
    this.combine();
  }

  async finished(): Promise<void> {
    this.progress.phase = 'done';
    this.combine();
    await this.report(true);
  }

  /** Reports progress: at most once a second unless forced. */
  async report(force = false): Promise<void> {
    this.countRequests();
    const onProgress = this.onProgress;
    if (!onProgress || this.muted || (!force && Date.now() - this.lastReport < PROGRESS_EVERY_MS)) return;
    this.lastReport = Date.now();
    // A write already waiting its turn writes the progress as it is then: this report joins it.
    // A change run checkpoints a bucket every few ms, and one record write each made a chain.
    if (this.nextWrite) return this.nextWrite;
    const write = this.reporting.then(() => {
      this.nextWrite = null;
      this.countRequests();
      // A copy: the record holding it is serialized only when the writer's queue reaches it, and
      // copied again meanwhile (a heartbeat's write), while the books' own objects move on. Shared,
      // a record could name a bucket done without its counts, and a resumed attempt would then lose
      // that bucket's profiles from its counts.
      return onProgress(structuredClone(this.progress));
    });
    this.nextWrite = write;
    this.reporting = write.catch(() => undefined);
    await write;
  }

  private countRequests(): void {
    const first = this.braze.firstRequestAt;
    if (first !== null) this.progress.timings.firstRequestSeconds = Math.round((first - this.started) / 10) / 100;
    this.progress.failureReasons = failureReasonsAfter(this.resumeFrom?.failureReasons, this.braze);
    const b = this.braze.requests;
    const base = this.resumeFrom?.requests ?? { sent: 0, retried: 0, rateLimited: 0 };
    this.progress.requests = {
      sent: base.sent + b.sent,
      retried: base.retried + b.retried,
      rateLimited: base.rateLimited + b.rateLimited,
    };
  }

  /** The run's counts with `buckets` counted as well (buckets weighed before any is committed: see run/weighing.ts). */
  countsWith(buckets: BucketCounts): RunCounts {
    const t = this.bucketTotals;
    return {
      rowsRead: this.progress.counts.rowsRead,
      profiles: t.profiles + buckets.profiles + this.rowsRejected,
      unchanged: t.unchanged + buckets.unchanged,
      sent: t.sent + buckets.sent,
      removed: t.removed + buckets.removed,
      rejected: t.rejected + buckets.rejected + this.rowsRejected,
      failed: t.failed + buckets.failed,
      removalsFailed: t.removalsFailed + buckets.removalsFailed,
      newProfiles: t.newProfiles + buckets.newProfiles,
    };
  }

  private combine(): void {
    this.progress.bucketCounts = { ...this.bucketTotals };
    this.progress.counts = this.countsWith(emptyBucketCounts());
  }
}
