// The engine's partition step, run on a worker thread so it does not compete with sending for the
// main thread: CSV text in (chunk by chunk, as downloaded), rows mapped to partial profiles and
// spilled to temp files by hash bucket of the profile key, or, when sending while reading, handed
// back to be sent at once (early-send/). Memory does not grow with the snapshot. When sending
// while reading, every partition is first read for its profile keys only, and its rows taken in
// once all are known (see startPartition).
import { appendFileSync, closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TextDecoder } from 'node:util';
import { isHeaderRecord, readCsv, spanNote } from '../../snapshot/csv-rows';
import { CsvKeyScanner } from '../../snapshot/csv-keys';
import type { ExportDefinition } from '../../exports/schema';
import { BucketFiles } from '../spill/bucket-files';
import { EarlyOffers } from '../early-send/offers';
import type { FromEngineThread, PartitionInit, PartitionSpec, PartitionSummary } from '../thread/protocol';
import { takeOver, type Handed, type RingReader, type RingWriter } from '../thread/shared-ring';
import { checkedMapper, PartitionAborted, type ColumnsSeen } from './column-check';
import { profileKey, type RowMapper } from './row-mapper';
import { SpillCodec } from '../spill/spill-codec';
import { bucketOf } from '../spill/key-hash';
import { CsvFeed, ended, type OpenPartition } from './csv-feed';
import { WaitingRows } from './waiting-rows';

const noColumns = (spec: PartitionSpec) => `Partition ${spec.blobName} has no header row and there is no model.json to name its columns`;

export const MAX_REPORT_ROWS = 50_000;
const PROGRESS_EVERY_ROWS = 20_000;

export class PartitionStep {
  private readonly def: ExportDefinition;
  private readonly bucketCount: number;
  private readonly done: Set<number>;
  private readonly codec: SpillCodec;
  private readonly spill: BucketFiles;
  private readonly early: EarlyOffers | null;
  private readonly earlySegment: string | null;
  private readonly summary: PartitionSummary = { rowsRead: 0, rowsRejected: 0, segmentRows: {}, rejectedRows: [], foundFields: [], missingFields: [] };
  private readonly columnsSeen: ColumnsSeen = { found: new Set(), missing: new Map() };
  /**
   * The partition being read: by Papa Parse (`reader`), or, when only its keys are wanted now, by
   * the key scanner (its rows wait in `deferTo`).
   */
  private current: { spec: PartitionSpec; deferTo: string | null; reader: OpenPartition | null; keys: CsvKeyScanner | null; failed: boolean; bytes: number } | null = null;
  private readonly chunkRing: RingReader;
  private readonly tempDir: string;
  /** Rows that wait (sending while reading), taken in once every key is known. */
  private readonly waiting = new WaitingRows((spec) => this.open(spec, 'rows'));
  private deferredCount = 0;
  /** What a partition's rows are read back in when its keys must be read by Papa Parse. */
  private readonly piece = Buffer.allocUnsafe(64 * 1024);

  constructor(
    init: PartitionInit,
    rings: { chunks: RingReader; objects: RingWriter },
    private readonly post: (message: FromEngineThread) => void,
  ) {
    this.chunkRing = rings.chunks;
    this.tempDir = init.tempDir;
    this.def = init.def;
    this.bucketCount = init.bucketCount;
    this.done = new Set(init.done);
    this.codec = SpillCodec.forExport(init.def);
    this.spill = new BucketFiles(init.tempDir, init.spillKind);
    this.earlySegment = init.early?.segment ?? null;
    this.early = init.early
      ? new EarlyOffers(init.tempDir, init.def, { otherRows: init.early.otherRows, tableRows: init.early.tableRows }, rings.objects, (batch) => this.post({ t: 'send', ...batch }))
      : null;
    for (const s of init.def.segments) this.summary.segmentRows[s] = 0;
  }

  startPartition(spec: PartitionSpec): void {
    // A row can be sent while reading once it is known that its profile has no other row: so when
    // sending while reading, every partition is first read for its profile keys only (scanned from
    // the bytes as they are downloaded), its rows waiting in a temp file. Once every key is known,
    // they are taken in from there (takeIn), which, with no download competing for the CPU, keeps
    // up with Braze.
    const deferTo = this.early !== null ? path.join(this.tempDir, `deferred-${this.deferredCount++}.csv`) : null;
    if (deferTo) writeFileSync(deferTo, '');
    this.current = { spec, deferTo, reader: deferTo ? null : this.open(spec, 'rows'), keys: deferTo ? this.keyScanner(spec) : null, failed: false, bytes: 0 };
  }

  /** The key pass's reader of a partition whose rows wait: keys noted straight from the bytes. */
  private keyScanner(spec: PartitionSpec): CsvKeyScanner {
    const segIndex = this.def.segments.indexOf(spec.segment);
    const firstRecord = (fields: string[]) => {
      const isHeader = isHeaderRecord(fields, { hasHeader: spec.hasHeader, columns: spec.columns.map((c) => c.name) });
      const mapper = isHeader ? this.headerMapper(spec, segIndex, fields.map((f) => f.trim())) : spec.columns.length ? this.newMapper(spec.segment, segIndex, spec.columns) : null;
      if (!mapper) throw new PartitionAborted(noColumns(spec));
      return { columns: mapper.keyColumns, isData: !isHeader };
    };
    return new CsvKeyScanner(spec.delimiter, firstRecord, (profileId, ext) => {
      // Noted even where the row turns out to be rejected: a key too many only means a merge.
      const id = profileId.trim();
      const e = ext.trim();
      if (id || e) this.early!.noteKey(spec.segment === this.earlySegment, profileKey(id, e));
    });
  }

  /** A partition's key pass by Papa Parse, from the file its rows wait in (the scanner found it unusual). */
  private async keysByPapaParse(spec: PartitionSpec, file: string): Promise<void> {
    const open = this.open(spec, 'keys');
    const fd = openSync(file, 'r');
    try {
      for (let n = readSync(fd, this.piece, 0, this.piece.length, null); n > 0; n = readSync(fd, this.piece, 0, this.piece.length, null)) {
        open.feed.push(open.decoder.decode(this.piece.subarray(0, n), { stream: true }));
      }
    } finally {
      closeSync(fd);
    }
    await ended(open);
  }

  /** A partition's CSV reader: each row mapped and spilled (or sent), or only its profile key noted. */
  private open(spec: PartitionSpec, what: 'rows' | 'keys'): OpenPartition {
    const segIndex = this.def.segments.indexOf(spec.segment);
    const partitionName = spec.blobName.split('/').pop()!;
    // Rows are taken in (what="rows") only once every key is known.
    const sendingLast = this.early !== null && spec.segment === this.earlySegment;
    const sendingOther = this.early !== null && !sendingLast;
    let mapper = spec.columns.length ? this.newMapper(spec.segment, segIndex, spec.columns) : null;
    const feed = new CsvFeed();
    const csv = { delimiter: spec.delimiter, hasHeader: spec.hasHeader, columns: spec.columns.map((c) => c.name) };
    const reading = readCsv(feed.stream, csv, (ev) => {
      if (ev.kind === 'header') {
        mapper = this.headerMapper(spec, segIndex, ev.columns);
        return;
      }
      if (!mapper) throw new PartitionAborted(noColumns(spec));
      if (what === 'keys') {
        const key = ev.kind === 'row' ? mapper.keyOf(ev.fields) : null;
        if (key !== null) this.early!.noteKey(spec.segment === this.earlySegment, key);
        return;
      }
      const s = this.summary;
      s.rowsRead++;
      s.segmentRows[spec.segment]!++;
      // Live progress, and a heartbeat so a long read is not mistaken for a dead worker.
      if (s.rowsRead % PROGRESS_EVERY_ROWS === 0) this.post({ t: 'progress', rowsRead: s.rowsRead, segmentRows: s.segmentRows });
      const result = ev.kind === 'bad' ? ({ ok: false, reason: ev.reason } as const) : mapper.map(ev.fields);
      if (!result.ok) {
        s.rowsRejected++;
        const span = ev.kind === 'row' ? spanNote(ev.fields) : '';
        if (s.rejectedRows.length < MAX_REPORT_ROWS) {
          s.rejectedRows.push({ segment: spec.segment, partition: partitionName, record: ev.record, profileId: ('profileId' in result && result.profileId) || '', reason: result.reason + span });
        }
        return;
      }
      const bucket = bucketOf(result.partial.key, this.bucketCount);
      if (this.done.has(bucket)) return;
      if (sendingLast && this.early!.offer(bucket, result.partial)) return;
      if (sendingOther && this.early!.offerOther(bucket, result.partial)) return;
      this.spill.write(bucket, this.codec.encode(result.partial));
    });
    reading.catch((e: unknown) => this.fail(e));
    return { feed, decoder: new TextDecoder('utf-8'), reading };
  }

  chunk(handed: Handed): void {
    const c = this.current!;
    const { bytes, release } = takeOver(this.chunkRing, handed);
    if (c.deferTo) appendFileSync(c.deferTo, bytes);
    c.bytes += bytes.length;
    if (c.reader) {
      const text = c.reader.decoder.decode(bytes, { stream: true });
      release(); // decoded: the main thread may reuse the space
      c.reader.feed.push(text);
    } else {
      try {
        if (!c.failed) c.keys!.push(bytes);
      } catch (e) {
        c.failed = true;
        this.fail(e);
      } finally {
        release(); // scanned (what the next chunk completes is copied)
      }
    }
    this.post({ t: 'chunkDone' });
  }

  async endPartition(): Promise<void> {
    const c = this.current!;
    if (c.reader) await ended(c.reader);
    else if (!c.failed) {
      c.keys!.end();
      if (c.keys!.unusual) await this.keysByPapaParse(c.spec, c.deferTo!);
    }
    if (c.deferTo) this.waiting.add(c.spec, c.deferTo, c.bytes);
    this.current = null;
    this.post({ t: 'partitionDone' });
  }

  /**
   * Once every key is read: the next piece of the rows that waited, whose profiles with no other
   * row are sent (the main thread asks piece by piece, as Braze takes them). Says whether more
   * wait, and whether this piece sent any (if not, there is no need to wait for Braze).
   */
  async takeIn(): Promise<{ more: boolean; sent: boolean }> {
    const before = this.early?.sent ?? 0;
    const more = await this.waiting.next();
    return { more, sent: (this.early?.sent ?? 0) > before };
  }

  /** A checkpoint of what was sent while reading: see EarlyOffers.mark. */
  earlyMark(): void {
    this.post({ t: 'earlyMarked', sizes: this.early?.mark(this.bucketCount) ?? [] });
  }

  stopSending(): void {
    this.early?.stop();
  }

  async finish(): Promise<void> {
    while (await this.waiting.next());
    this.spill.close();
    this.early?.finish();
    this.summary.foundFields = [...this.columnsSeen.found];
    this.summary.missingFields = [...this.columnsSeen.missing];
    this.post({ t: 'finished', summary: this.summary });
  }

  /** Attribute omissions of the bucket's profiles sent while reading. */
  earlyOmittedIn(bucket: number): Record<string, number> {
    return this.early?.omittedIn(bucket) ?? {};
  }

  fail(e: unknown): void {
    this.post({ t: 'error', message: (e as Error).message ?? String(e), aborted: e instanceof PartitionAborted });
  }

  /** The mapper of a partition with a header: the file's own header wins for column order; model.json still gives the types. */
  private headerMapper(spec: PartitionSpec, segIndex: number, names: string[]): RowMapper {
    const typeOf = (name: string) => spec.columns.find((c) => c.name.toLowerCase() === name.toLowerCase())?.dataType;
    return this.newMapper(spec.segment, segIndex, names.map((name) => ({ name, dataType: typeOf(name) })));
  }

  private newMapper(segment: string, segIndex: number, columns: { name: string; dataType?: string }[]): RowMapper {
    return checkedMapper(this.def, segment, segIndex, columns, this.columnsSeen);
  }
}
