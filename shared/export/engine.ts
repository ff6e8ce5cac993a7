// The export engine: one run of one export over one snapshot.
//   1. Partition: stream every CSV partition, map rows to partial profiles, spill them to temp
//      files by hash bucket of the profile key (memory does not grow with the snapshot).
//   2. Per bucket: merge each profile across segments, diff against the sync state, send only what
//      changed (plus `null` membership for profiles that left), then record what Braze accepted.
// Counts hold `profiles = sent + unchanged + rejected + failed` at every checkpoint.
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { BlobServiceClient } from '@azure/storage-blob';
import { BrazeFatalError, MAX_OBJECTS_PER_REQUEST, type BrazeClient, type BrazeObject, type Outcome } from '../braze/client';
import type { ExportDefinition } from '../exports/schema';
import { readCsv } from '../snapshot/csv-rows';
import type { Snapshot } from '../snapshot/locate';
import { identityOf, leaverObject, mergePartials, RowMapper, toBrazeObject, type MergedProfile, type PartialProfile } from './profile';
import { SpillCodec, valueToken } from './spill-codec';
import { bucketOf, chooseBucketCount, fingerprint, hashText, type BucketState, type StateEntry, type SyncStateStore } from './sync-state';

export interface RunCounts {
  rowsRead: number;
  profiles: number;
  unchanged: number;
  sent: number;
  removed: number;
  rejected: number;
  failed: number;
  removalsFailed: number;
}

/** What finished buckets add up to: carried across a resumed run's attempts. */
export type BucketCounts = Omit<RunCounts, 'rowsRead'>;

export interface RejectedRow {
  segment: string;
  partition: string;
  /** Data record number within the partition (1 = first row after any header). */
  record: number | '';
  profileId: string;
  reason: string;
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
  /** Seconds spent reading the snapshot and sending, in this attempt. */
  timings: { readingSeconds: number; sendingSeconds: number };
  warnings: string[];
}

export interface EngineInput {
  definition: ExportDefinition;
  snapshot: Snapshot;
  ciBlobs: BlobServiceClient;
  state: SyncStateStore;
  braze: BrazeClient;
  fullSync: boolean;
  /** Counts of buckets finished by an earlier attempt of this run (resume). */
  resumeFrom?: Pick<RunProgress, 'buckets' | 'bucketCounts' | 'requests' | 'omittedAttributes'>;
  onProgress?: (progress: RunProgress) => Promise<void> | void;
  /** Asked between buckets: true = stop now (time box), the caller re-queues the continuation. */
  shouldYield?: () => boolean;
  /** Snapshot bytes per bucket, when the export has no sync state yet. */
  bucketTargetBytes?: number;
  /** Batches in flight at once (the request budget paces them). */
  concurrency?: number;
  tempRoot?: string;
}

export interface EngineResult {
  progress: RunProgress;
  rejectedRows: RejectedRow[];
  rejectedRowsTotal: number;
  /** false when the run stopped early to be continued. */
  complete: boolean;
}

/** The run cannot go on (bad mapping, bad key…): nothing more is sent; the message is for the user. */
export class RunAborted extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunAborted';
  }
}

const MAX_REPORT_ROWS = 50_000;
/** Array custom attributes keep this many values by default in Braze. */
const BRAZE_ARRAY_LIMIT = 25;
const PROGRESS_EVERY_MS = 1000;

/**
 * Settings whose change makes earlier fingerprints meaningless for this export: what is sent, and
 * where (another connection or endpoint may be another Braze workspace that has none of it).
 */
export const definitionFingerprint = (d: ExportDefinition, destination: string) =>
  fingerprint({ m: d.matching, s: d.segments, b: d.membership, id: d.brazeSegmentApiId, c: d.connectionId, to: destination });

const emptyCounts = (): RunCounts => ({ rowsRead: 0, profiles: 0, unchanged: 0, sent: 0, removed: 0, rejected: 0, failed: 0, removalsFailed: 0 });
const emptyBucketCounts = (): BucketCounts => ({ profiles: 0, unchanged: 0, sent: 0, removed: 0, rejected: 0, failed: 0, removalsFailed: 0 });

export async function runExport(input: EngineInput): Promise<EngineResult> {
  const { definition: def, snapshot } = input;
  const manifest = await input.state.readManifest();
  const bucketCount = input.resumeFrom?.buckets.total ?? manifest?.bucketCount ?? chooseBucketCount(snapshot.totalBytes, input.bucketTargetBytes);
  if (!manifest || manifest.bucketCount !== bucketCount) await input.state.writeManifest({ version: 1, bucketCount });

  const progress: RunProgress = {
    phase: 'reading',
    counts: emptyCounts(),
    requests: { sent: 0, retried: 0, rateLimited: 0 },
    segments: Object.fromEntries(def.segments.map((s) => [s, { rows: 0 }])),
    omittedAttributes: { ...(input.resumeFrom?.omittedAttributes ?? {}) },
    buckets: { total: bucketCount, done: [...(input.resumeFrom?.buckets.done ?? [])] },
    bucketCounts: emptyBucketCounts(),
    timings: { readingSeconds: 0, sendingSeconds: 0 },
    warnings: [],
  };
  if (def.membership.format === 'list' && def.segments.length > BRAZE_ARRAY_LIMIT) {
    progress.warnings.push(
      `The export has ${def.segments.length} segments: Braze keeps ${BRAZE_ARRAY_LIMIT} values of an array attribute by default, so longer membership lists are cut; raise the limit in Braze or use membership.format "boolean"`,
    );
  }
  const rejectedRows: RejectedRow[] = [];
  let rejectedRowsTotal = 0;
  const reject = (row: RejectedRow) => {
    rejectedRowsTotal++;
    if (rejectedRows.length < MAX_REPORT_ROWS) rejectedRows.push(row);
  };

  let lastReport = 0;
  const report = async (force = false) => {
    const b = input.braze.requests;
    const base = input.resumeFrom?.requests ?? { sent: 0, retried: 0, rateLimited: 0 };
    progress.requests = { sent: base.sent + b.sent, retried: base.retried + b.retried, rateLimited: base.rateLimited + b.rateLimited };
    if (!input.onProgress || (!force && Date.now() - lastReport < PROGRESS_EVERY_MS)) return;
    lastReport = Date.now();
    await input.onProgress(progress);
  };

  const tempDir = mkdtempSync(path.join(input.tempRoot ?? os.tmpdir(), 'ci-braze-run-'));
  const started = Date.now();
  const seconds = (from: number) => Math.round((Date.now() - from) / 100) / 10;
  try {
    // ---- 1. Partition the snapshot by profile key -------------------------------------------
    const done = new Set(progress.buckets.done);
    const spill = new BucketFiles(tempDir, new SpillCodec(Object.keys(def.matching.attributes).sort()));
    let rowsRead = 0;
    let rowsRejected = 0;
    const foundFields = new Set<string>();
    const missingFields = new Map<string, string>();
    const container = input.ciBlobs.getContainerClient(def.source.container);
    const newMapper = (segment: string, segIndex: number, columns: { name: string; dataType?: string }[]) => {
      const mapper = new RowMapper(def, segIndex, columns);
      if (mapper.problems.some((p) => p.field === 'matching.profileId')) {
        throw new RunAborted(
          `Segment "${segment}" has no column "${def.matching.profileId}" (matching.profileId); its columns are: ${columns.map((c) => c.name).join(', ')}`,
        );
      }
      for (const p of mapper.problems) missingFields.set(p.field, p.column);
      for (const f of mapper.mappedFields) foundFields.add(f);
      return mapper;
    };
    for (const table of snapshot.tables) {
      const segIndex = def.segments.indexOf(table.segment);
      const segmentCounts = progress.segments[table.segment]!;
      for (const partition of table.partitions) {
        const partitionName = partition.blobName.split('/').pop()!;
        const download = await container.getBlobClient(partition.blobName).download();
        let mapper = table.columns.length ? newMapper(table.segment, segIndex, table.columns) : null;
        const csv = { delimiter: partition.delimiter, hasHeader: partition.hasHeader, columns: table.columns.map((c) => c.name) };
        await readCsv(download.readableStreamBody as Readable, csv, (ev) => {
          if (ev.kind === 'header') {
            // The file's own header wins for column order; model.json still gives the types.
            const typeOf = (name: string) => table.columns.find((c) => c.name.toLowerCase() === name.toLowerCase())?.dataType;
            mapper = newMapper(table.segment, segIndex, ev.columns.map((name) => ({ name, dataType: typeOf(name) })));
            return;
          }
          if (!mapper) throw new RunAborted(`Partition ${partition.blobName} has no header row and there is no model.json to name its columns`);
          rowsRead++;
          segmentCounts.rows++;
          if (rowsRead % 20_000 === 0) {
            // Live progress, and a heartbeat so a long read is not mistaken for a dead worker.
            progress.counts.rowsRead = rowsRead;
            void report().catch(() => undefined);
          }
          const result = ev.kind === 'bad' ? ({ ok: false, reason: ev.reason } as const) : mapper.map(ev.fields);
          if (!result.ok) {
            rowsRejected++;
            const span = ev.kind === 'row' && ev.multiline ? ' (the record spans several lines: an unclosed quote may have joined rows)' : '';
            reject({ segment: table.segment, partition: partitionName, record: ev.record, profileId: ('profileId' in result && result.profileId) || '', reason: result.reason + span });
            return;
          }
          const bucket = bucketOf(result.partial.key, bucketCount);
          if (!done.has(bucket)) spill.write(bucket, result.partial);
        });
      }
    }
    spill.close();
    const unknown = [...missingFields].filter(([field]) => !foundFields.has(field));
    if (unknown.length) {
      throw new RunAborted(`Unknown column(s) in the mapping: ${unknown.map(([f, c]) => `${f} → "${c}"`).join(', ')}; no exported segment has them`);
    }
    // Rows that never became a profile count as rejected profiles, so the sum still holds.
    const bucketTotals: BucketCounts = { ...emptyBucketCounts(), ...input.resumeFrom?.bucketCounts };
    const combine = () => {
      progress.bucketCounts = { ...bucketTotals };
      progress.counts = {
        rowsRead,
        profiles: bucketTotals.profiles + rowsRejected,
        unchanged: bucketTotals.unchanged,
        sent: bucketTotals.sent,
        removed: bucketTotals.removed,
        rejected: bucketTotals.rejected + rowsRejected,
        failed: bucketTotals.failed,
        removalsFailed: bucketTotals.removalsFailed,
      };
    };
    combine();
    progress.phase = 'sending';
    progress.timings.readingSeconds = seconds(started);
    const sendingStarted = Date.now();
    await report(true);

    // ---- 2. Bucket by bucket: merge, diff, send, record -------------------------------------
    // The next bucket is prepared (read, merged, diffed) while the current one is being sent.
    const definitionFp = definitionFingerprint(def, input.braze.destination);
    const sender = new BatchSender(input.braze, input.concurrency ?? 48);
    const pending = Array.from({ length: bucketCount }, (_, b) => b).filter((b) => !done.has(b));
    const prepare = (bucket: number) => prepareBucket(bucket, def, definitionFp, input.fullSync, spill, input.state);
    let next = pending.length ? prepare(pending[0]!) : null;
    for (let i = 0; i < pending.length; i++) {
      const bucket = pending[i]!;
      if (input.shouldYield?.()) return { progress, rejectedRows, rejectedRowsTotal, complete: false };
      const prepared = await next!;
      next = i + 1 < pending.length ? prepare(pending[i + 1]!) : null;
      next?.catch(() => undefined); // awaited on the next turn

      const outcomes = await sender.sendAll(prepared.toSend.map((t) => t.obj), () => report());
      const totals = prepared.counts;
      prepared.toSend.forEach((t, j) => {
        const outcome = outcomes[j]!;
        const before = prepared.previous.get(t.key);
        if (t.leaving) {
          if (outcome.status === 'sent') totals.removed++;
          else if (outcome.status === 'failed') {
            totals.removalsFailed++;
            prepared.next.entries.set(t.key, before!); // try the removal again next run
          } else reject({ segment: '', partition: '', record: '', profileId: t.key, reason: `removal refused: ${outcome.reason}` });
          return;
        }
        if (outcome.status === 'sent') {
          totals.sent++;
          prepared.next.entries.set(t.key, { identity: t.identity, fp: t.fp });
          return;
        }
        // Not delivered: keep what Braze had, so the next run sends it again.
        if (before) prepared.next.entries.set(t.key, before);
        if (outcome.status === 'rejected') {
          totals.rejected++;
          reject({ segment: '', partition: '', record: '', profileId: t.key, reason: outcome.reason });
        } else totals.failed++;
      });
      if (prepared.toSend.length > 0 || prepared.stateOutdated) await input.state.writeBucket(bucket, prepared.next);
      // Commit the bucket: its counts and omissions join the run's only now, with its checkpoint.
      for (const k of Object.keys(totals) as (keyof BucketCounts)[]) bucketTotals[k] += totals[k];
      for (const [attr, n] of Object.entries(prepared.omitted)) progress.omittedAttributes[attr] = (progress.omittedAttributes[attr] ?? 0) + n;
      done.add(bucket);
      progress.buckets.done = [...done].sort((a, b) => a - b);
      progress.timings.sendingSeconds = seconds(sendingStarted);
      combine();
      await report(true);
    }
    progress.phase = 'done';
    combine();
    await report(true);
    return { progress, rejectedRows, rejectedRowsTotal, complete: true };
  } catch (e) {
    if (e instanceof BrazeFatalError) throw new RunAborted(e.message);
    throw e;
  } finally {
    rmSync(tempDir, { recursive: true, force: true });
  }
}

interface ToSend {
  key: string;
  obj: BrazeObject;
  fp: string;
  identity: string;
  leaving: boolean;
}

interface PreparedBucket {
  toSend: ToSend[];
  previous: Map<string, StateEntry>;
  next: BucketState;
  stateOutdated: boolean;
  counts: BucketCounts;
  omitted: Record<string, number>;
}

/**
 * What a profile's attributes object holds, as compact text: identity, email, phone, typed mapped
 * values and segments (everything else in the object comes from the export settings, which the
 * definition fingerprint covers). Unchanged profiles are recognised without building their object.
 */
function profileFingerprint(identity: string, p: MergedProfile, attributes: readonly string[]): string {
  let t = `${identity}\x1f${p.email ?? ''}\x1f${p.phone ?? ''}`;
  for (const a of attributes) t += `\x1f${valueToken(p.attrs[a])}`;
  return hashText(`${t}\x1f${p.segments.join(',')}`);
}

/** Merges a bucket's profiles, and diffs them against what Braze was last sent. */
async function prepareBucket(
  bucket: number,
  def: ExportDefinition,
  definitionFp: string,
  fullSync: boolean,
  spill: BucketFiles,
  state: SyncStateStore,
): Promise<PreparedBucket> {
  const [partials, previous] = await Promise.all([spill.read(bucket), state.readBucket(bucket)]);
  const trustPrevious = previous.definition === definitionFp && !fullSync;
  const next: BucketState = { definition: definitionFp, entries: new Map() };
  const counts = emptyBucketCounts();
  const omitted: Record<string, number> = {};
  const toSend: ToSend[] = [];
  const attributes = Object.keys(def.matching.attributes).sort();
  for (const [key, list] of partials) {
    const merged = mergePartials(list);
    for (const attr of Object.keys(merged.omitted)) omitted[attr] = (omitted[attr] ?? 0) + 1;
    counts.profiles++;
    const identity = identityOf(merged);
    const fp = profileFingerprint(identity, merged, attributes);
    const before = previous.entries.get(key);
    if (trustPrevious && before?.fp === fp) {
      counts.unchanged++;
      next.entries.set(key, before);
    } else toSend.push({ key, obj: toBrazeObject(merged, def), fp, identity, leaving: false });
  }
  for (const [key, before] of previous.entries) {
    if (!partials.has(key)) toSend.push({ key, obj: leaverObject(before.identity, def), fp: '', identity: before.identity, leaving: true });
  }
  return { toSend, previous: previous.entries, next, stateOutdated: previous.definition !== definitionFp, counts, omitted };
}

/** Sends objects in batches of ≤ 75 with bounded concurrency; outcomes come back in input order. */
class BatchSender {
  constructor(
    private readonly braze: BrazeClient,
    private readonly concurrency: number,
  ) {}

  async sendAll(objects: BrazeObject[], onBatch: () => Promise<void>): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array(objects.length);
    let next = 0;
    const worker = async () => {
      for (;;) {
        const start = next;
        if (start >= objects.length) return;
        next += MAX_OBJECTS_PER_REQUEST;
        const batch = objects.slice(start, start + MAX_OBJECTS_PER_REQUEST);
        const result = await this.braze.track(batch);
        result.forEach((o, i) => (outcomes[start + i] = o));
        await onBatch();
      }
    };
    const batches = Math.ceil(objects.length / MAX_OBJECTS_PER_REQUEST);
    await Promise.all(Array.from({ length: Math.min(this.concurrency, batches) }, worker));
    return outcomes;
  }
}

/** One temp file per bucket: the partition step's spill. Small per-bucket buffers (≤ 32 KB each)
 * keep memory flat and file handles few, whatever the bucket count. */
class BucketFiles {
  private readonly buffers = new Map<number, { lines: string[]; bytes: number }>();
  private readonly written = new Set<number>();
  private static readonly FLUSH_BYTES = 32 * 1024;

  constructor(
    private readonly dir: string,
    private readonly codec: SpillCodec,
  ) {}

  private file(bucket: number) {
    return path.join(this.dir, `bucket-${bucket}.jsonl`);
  }

  write(bucket: number, partial: PartialProfile): void {
    let b = this.buffers.get(bucket);
    if (!b) this.buffers.set(bucket, (b = { lines: [], bytes: 0 }));
    const line = `${this.codec.encode(partial)}\n`;
    b.lines.push(line);
    b.bytes += line.length;
    if (b.bytes >= BucketFiles.FLUSH_BYTES) this.flush(bucket, b);
  }

  private flush(bucket: number, b: { lines: string[]; bytes: number }): void {
    if (b.lines.length === 0) return;
    // Synchronous on purpose: a local append of 32 KB is cheaper than a promise per row.
    appendFileSync(this.file(bucket), b.lines.join(''));
    b.lines = [];
    b.bytes = 0;
    this.written.add(bucket);
  }

  close(): void {
    for (const [bucket, b] of this.buffers) this.flush(bucket, b);
    this.buffers.clear();
  }

  /** The bucket's partials grouped by profile key (in row order). */
  async read(bucket: number): Promise<Map<string, PartialProfile[]>> {
    const byKey = new Map<string, PartialProfile[]>();
    if (!this.written.has(bucket)) return byKey;
    const text = await readFile(this.file(bucket), 'utf8');
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; start = end + 1, end = text.indexOf('\n', start)) {
      const p = this.codec.decode(text.slice(start, end));
      const list = byKey.get(p.key);
      if (list) list.push(p);
      else byKey.set(p.key, [p]);
    }
    return byKey;
  }
}
