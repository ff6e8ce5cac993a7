// The engine's partition step, run on a worker thread so it does not compete with sending for the
// main thread: CSV text in (chunk by chunk, as downloaded), each row checked for an identifier,
// cut down to the mapped columns and spilled to temp files by hash bucket of the profile key (the
// bucket step maps it, if its profile changed), or, when sending early, mapped and handed
// back to be sent at once (early-send/). Memory does not grow with the snapshot. When sending
// early, the other segments are first read for their profile keys only, and their rows
// taken in later (see startPartition).
import { CsvRecordScanner } from '../../snapshot/csv-scanner';
import type { ExportDefinition } from '../../exports/schema';
import { BucketFiles, MAX_OPEN_FILES } from '../spill/bucket-files';
import { EarlyOffers, type OfferedRow } from '../early-send/offers';
import type { FromEngineThread, PartitionInit, PartitionSpec, RejectedRow } from '../thread/protocol';
import { takeOver, type Handed, type RingReader, type RingWriter } from '../thread/shared-ring';
import type { BlobGrant } from '../../store/blob-grant';
import { openAhead, type BlobRequest } from '../../store/blob-download';
import { downloadPartition } from './partition-download';
import { checkedMapper, PartitionAborted } from './column-check';
import { PartitionBooks } from './partition-books';
import { spilledRowTyping, type RowMapper } from '../profile/row-mapper';
import type { ScannedRowWriter } from './scanned-rows';
import { bucketOfHash } from '../hash/key-hash';
import { encodeRow } from '../spill/spill-codec';
import { bytesDigest, lineDigest } from '../hash/rows-digest';
import { papaReader, scannedReader, type OpenPartition } from './partition-readers';
import { PartitionRows, type RowSink } from './partition-rows';
import { DeferredRows } from './deferred-rows';

/** Pieces of waiting rows taken in per request of the main thread: fewer round trips, each a wait for its event loop. */
const TAKE_IN_PIECES = 4;

export class PartitionStep implements RowSink {
  private readonly def: ExportDefinition;
  private readonly bucketCount: number;
  private readonly done: Set<number>;
  private readonly spill: BucketFiles;
  private readonly early: EarlyOffers | null;
  private readonly earlySegment: string | null;
  /** The seed of the rows digests of rows sent early (see spilledRowTyping). */
  private readonly digestSeed: number;
  private readonly books: PartitionBooks;
  /** The partition being read; one read for its keys first (`deferring`) keeps its bytes meanwhile. */
  private current: { open: OpenPartition; spec: PartitionSpec; deferring: boolean } | null = null;
  private readonly chunkRing: RingReader;
  /** Rows of other segments that wait to be mapped and spilled. */
  private readonly deferred: DeferredRows;
  private waitingForBraze = false;
  /** The segment read last is complete: rows that waited may be sent too (see takeIn). */
  private lastSegmentRead = false;
  /** The request for the partition to download next, sent while this one is read. */
  private ahead: BlobRequest | null = null;

  constructor(
    init: PartitionInit,
    rings: { chunks: RingReader; objects: RingWriter },
    private readonly post: (message: FromEngineThread) => void,
  ) {
    this.chunkRing = rings.chunks;
    this.deferred = new DeferredRows(init.tempDir, (spec) => this.open(spec, 'rows'));
    this.def = init.def;
    this.bucketCount = init.bucketCount;
    this.done = new Set(init.done);
    this.spill = new BucketFiles(init.tempDir, init.spillKind, init.bucketCount, MAX_OPEN_FILES);
    this.earlySegment = init.early?.segment ?? null;
    this.digestSeed = spilledRowTyping(init.def, init.tableColumns).digestSeed;
    this.early = init.early
      ? new EarlyOffers(
          init.tempDir,
          init.def,
          { otherBytes: init.early.otherBytes, tableBytes: init.early.tableBytes },
          init.bucketCount,
          rings.objects,
          (batch) => this.post({ t: 'send', ...batch }),
        )
      : null;
    this.books = new PartitionBooks(init.def.segments, (rowsRead, segmentRows) =>
      this.post({ t: 'progress', rowsRead, segmentRows }),
    );
  }

  startPartition(spec: PartitionSpec): void {
    const sending = this.early !== null && spec.segment === this.earlySegment;
    // Before the largest segment can be sent early, only the other segments' profile keys
    // are needed. Their rows wait in a temp file and are mapped and spilled later, while the engine
    // thread would otherwise wait for Braze: sending starts sooner.
    const deferring = this.early !== null && !sending;
    if (deferring) this.deferred.keep(spec);
    this.current = { open: this.open(spec, deferring ? 'keys' : 'rows'), spec, deferring };
  }

  /**
   * A partition's CSV reader: each row spilled (or mapped and sent), or only its profile key noted.
   * The CSV scanner reads it, unless its delimiter is one the scanner cannot scan for.
   */
  private open(spec: PartitionSpec, what: 'rows' | 'keys'): OpenPartition {
    const rows = new PartitionRows(this, spec, what);
    const fail = (e: unknown) => this.fail(e);
    if (CsvRecordScanner.canScan(spec.delimiter)) return scannedReader(spec.delimiter, rows, fail);
    return papaReader(rows.options, (ev) => rows.event(ev), fail);
  }

  /** A row to count (and report progress on): every data record of the snapshot is one. */
  countRow(segment: string): void {
    this.books.countRow(segment);
  }

  /** A row refused: counted, and reported (up to a limit) with its reason. */
  reject(row: RejectedRow): void {
    this.books.reject(row);
  }

  /** Where a row of this profile key goes: its bucket, or -1 when an earlier attempt finished that bucket. */
  bucketFor(keyHash: number): number {
    const bucket = bucketOfHash(keyHash, this.bucketCount);
    return this.done.size > 0 && this.done.has(bucket) ? -1 : bucket;
  }

  /** A row as strings: spilled, or (when sending early) mapped and sent. */
  takeRow(table: PartitionRows, bucket: number, key: string, keyHash: number, fields: string[]): void {
    const line = encodeRow(table.segIndex, key, fields, table.mapper!.spillAt);
    const offered = this.sendsRowsOf(table) && {
      bucket,
      hash: keyHash,
      rowsDigest: () => lineDigest(line, this.digestSeed),
      partial: () => table.mapper!.partialOf(fields),
      line: null,
    };
    if (offered && this.offer(table, offered)) return;
    this.spill.write(bucket, line);
  }

  /** A scanned row, its spill line written from the bytes: spilled, or (when sending early) sent, its object written from the line. */
  takeLine(table: PartitionRows, bucket: number, line: ScannedRowWriter, record: CsvRecordScanner, need: number): void {
    const mapper = table.mapper!;
    if (!this.sendsRowsOf(table)) {
      // Written where the bucket's lines wait for the file, not written and then copied there.
      const room = this.spill.lineRoom(bucket, need + 1);
      if (room) return this.spill.endLine(room, line.writeAt(record, mapper, room.bytes, room.view, room.used));
    }
    line.writeMeasured(record, mapper, need);
    const { bytes, view, length } = line;
    const offered = this.sendsRowsOf(table) && {
      bucket,
      hash: line.keyHash,
      rowsDigest: () => bytesDigest(bytes, view, 0, length, this.digestSeed),
      partial: () => table.mapper!.partialOf(record.fields()),
      line: { bytes, length, mapper: table.mapper!, segment: table.segIndex },
    };
    if (offered && this.offer(table, offered)) return;
    this.spill.writeBytes(bucket, bytes, 0, length);
  }

  /** Whether rows of this partition may be sent early (else each is spilled, with no more work). */
  private sendsRowsOf(table: PartitionRows): boolean {
    return this.early !== null && (table.sending || table.sendingSingles);
  }

  /**
   * Offers a row to be sent early: true when it is going to be (then it is not spilled).
   * Only a row sent is mapped here; the bucket step maps the others, if their profile changed.
   */
  private offer(table: PartitionRows, row: OfferedRow): boolean {
    return table.sending ? this.early!.offer(row) : this.early!.offerOther(row);
  }

  segmentIndex(segment: string): number {
    return this.def.segments.indexOf(segment);
  }

  noteOtherSegment(keyHash: number): void {
    this.early!.noteOtherSegment(keyHash);
  }

  get sendingSegment(): string | null {
    return this.early !== null ? this.earlySegment : null;
  }

  get sendingSingles(): boolean {
    return this.early !== null && this.lastSegmentRead;
  }

  chunk(handed: Handed): void {
    this.waitingForBraze = false;
    const c = this.current!;
    const { bytes, release } = takeOver(this.chunkRing, handed);
    this.takeChunk(c, bytes);
    release(); // read: the main thread may reuse the space
    this.post({ t: 'chunkDone' });
  }

  /**
   * Downloads the partition begun (see store/blob-download.ts), reads it, and ends it. The request
   * for the `next` one goes meanwhile: on one core the thread otherwise idled ~20–50 ms at each
   * partition's start, waiting for the blob service's first bytes.
   */
  async download(grant: BlobGrant, next: BlobGrant | null): Promise<void> {
    const c = this.current!;
    // The bytes are the download's reused buffer: used here, never kept (nor given back: freeNow).
    const push = (bytes: Buffer) => this.takeChunk(c, bytes);
    const reading = downloadPartition(grant, c.spec.blobName, push, {}, this.ahead); // its request goes first
    this.ahead = next ? openAhead(next) : null;
    await reading;
    await this.endPartition();
  }

  /** A chunk of the partition begun, whoever downloaded it: kept (and counted) while only its keys are read, then read. */
  private takeChunk(c: NonNullable<PartitionStep['current']>, bytes: Uint8Array): void {
    if (c.deferring) this.deferred.write(bytes);
    c.open.push(bytes);
    if (c.deferring) this.early!.keyPassBytes += bytes.length;
  }

  async endPartition(): Promise<void> {
    const c = this.current!;
    try {
      await c.open.end();
    } finally {
      this.deferred.closeKeptFile();
    }
    if (c.deferring) this.deferred.kept();
    this.current = null;
    this.post({ t: 'partitionDone' });
  }

  /** The main thread holds the next chunks back until Braze catches up: time for rows that wait. */
  brazeBehind(): void {
    this.waitingForBraze = true;
  }

  /**
   * Whether rows wait to be mapped and spilled, and this is a good time: while Braze is behind.
   * Otherwise the thread would only delay the next chunk, and with it the requests.
   */
  get hasDeferredWork(): boolean {
    return this.waitingForBraze && this.deferred.pending;
  }

  /** Maps and spills the next piece of the rows that waited; false once none are left. */
  workDeferred(): Promise<boolean> {
    return this.deferred.takeNextPiece();
  }

  /**
   * Once the segment read last is read: the next piece of the rows that waited, whose profiles with
   * no other row are sent (the main thread asks piece by piece, as Braze takes them). Says whether
   * more wait, and whether this piece sent any (if not, there is no need to wait for Braze).
   */
  async takeIn(): Promise<{ more: boolean; sent: boolean }> {
    this.lastSegmentRead = true;
    const before = this.early?.sent ?? 0;
    let more = true;
    for (let i = 0; i < TAKE_IN_PIECES && more; i++) more = await this.workDeferred();
    return { more, sent: (this.early?.sent ?? 0) > before };
  }

  /** A checkpoint of what was sent early: see EarlyOffers.mark. */
  earlyMark(): void {
    this.post({ t: 'earlyMarked', sizes: this.early?.mark(this.bucketCount) ?? [] });
  }

  stopSending(): void {
    this.early?.stop();
  }

  async finish(): Promise<void> {
    this.close();
    while (await this.workDeferred());
    this.spill.close();
    this.early?.finish();
    this.post({ t: 'finished', summary: this.books.closed() });
  }

  /** Attribute omissions of the bucket's profiles sent early. */
  earlyOmittedIn(bucket: number): Record<string, number> {
    return this.early?.omittedIn(bucket) ?? {};
  }

  /**
   * Drops a request sent ahead for a partition this step will not read, and closes the spill files
   * kept open (the run ended or failed; a thread is kept for the next run).
   */
  close(): void {
    this.ahead?.destroy();
    this.ahead = null;
    this.spill.closeFiles();
    this.early?.closeFiles();
  }

  fail(e: unknown): void {
    this.close();
    this.deferred.close();
    this.post({ t: 'error', message: (e as Error).message ?? String(e), aborted: e instanceof PartitionAborted });
  }

  newMapper(segment: string, segIndex: number, columns: { name: string; dataType?: string }[]): RowMapper {
    return checkedMapper(this.def, segment, segIndex, columns, this.books.columnsSeen);
  }
}
