// One partition's rows, as Papa Parse or the CSV scanner reads them (see partition-readers.ts): the
// header decides the columns; each data row is counted, refused with its reason, or handed to the
// partition step to be spilled or sent (or, for a segment read for its keys first, its key noted).
import { isHeaderRecord, sameName, spanNote, type CsvEvent, type CsvOptions } from '../../snapshot/csv-rows';
import type { CsvRecordScanner } from '../../snapshot/csv-scanner';
import { fnv1a32 } from '../hash/key-hash';
import type { PartitionSpec, RejectedRow } from '../thread/protocol';
import { PartitionAborted } from './column-check';
import type { RowTaker } from './partition-readers';
import type { RowMapper } from '../profile/row-mapper';
import { ScannedRowWriter } from './scanned-rows';

/** What the partition step does with a partition's rows (partition-step.ts). */
export interface RowSink {
  segmentIndex(segment: string): number;
  countRow(segment: string): void;
  reject(row: RejectedRow): void;
  bucketFor(keyHash: number): number;
  takeRow(table: PartitionRows, bucket: number, key: string, keyHash: number, fields: string[]): void;
  /** A scanned row that measure() accepted (`need`: the most bytes its line can take), its line not written yet. */
  takeLine(table: PartitionRows, bucket: number, line: ScannedRowWriter, record: CsvRecordScanner, need: number): void;
  noteOtherSegment(keyHash: number): void;
  newMapper(segment: string, segIndex: number, columns: { name: string; dataType?: string }[]): RowMapper;
  readonly sendingSegment: string | null;
  readonly sendingSingles: boolean;
}

export class PartitionRows implements RowTaker {
  readonly segIndex: number;
  /** The table's mapper: from model.json's columns, then from the file's header if it has one. */
  mapper: RowMapper | null;
  readonly options: CsvOptions;
  /** Rows of this partition are sent early when their profile has no other row. */
  readonly sending: boolean;
  readonly sendingSingles: boolean;
  private readonly partitionName: string;
  /** Data records read by the scanner so far (Papa Parse numbers its own). */
  private records = 0;
  private firstSeen = false;
  private readonly writer: ScannedRowWriter;

  constructor(
    private readonly sink: RowSink,
    private readonly spec: PartitionSpec,
    private readonly what: 'rows' | 'keys',
  ) {
    this.segIndex = sink.segmentIndex(spec.segment);
    this.partitionName = spec.blobName.split('/').pop()!;
    this.sending = sink.sendingSegment === spec.segment;
    this.sendingSingles = sink.sendingSingles && !this.sending;
    this.mapper = spec.columns.length ? sink.newMapper(spec.segment, this.segIndex, spec.columns) : null;
    this.options = { delimiter: spec.delimiter, hasHeader: spec.hasHeader, columns: spec.columns.map((c) => c.name) };
    this.writer = new ScannedRowWriter(this.segIndex);
  }

  event(ev: CsvEvent): void {
    if (ev.kind === 'header') {
      // The file's own header wins for column order; model.json still gives the types.
      const typeOf = (name: string) => this.spec.columns.find((c) => sameName(c.name, name))?.dataType;
      this.mapper = this.sink.newMapper(
        this.spec.segment,
        this.segIndex,
        ev.columns.map((name) => ({ name, dataType: typeOf(name) })),
      );
      return;
    }
    const mapper = this.mapperOrAbort();
    if (this.what === 'keys') {
      const key = ev.kind === 'row' ? mapper.keyOf(ev.fields) : null;
      if (key !== null) this.sink.noteOtherSegment(fnv1a32(key));
      return;
    }
    this.sink.countRow(this.spec.segment);
    const id = ev.kind === 'bad' ? ({ ok: false, reason: ev.reason } as const) : mapper.identify(ev.fields);
    if (!id.ok) {
      const span = ev.kind === 'row' ? spanNote(ev.fields) : '';
      this.sink.reject({
        segment: this.spec.segment,
        partition: this.partitionName,
        record: ev.record,
        profileId: ('profileId' in id && id.profileId) || '',
        reason: id.reason + span,
      });
      return;
    }
    const keyHash = fnv1a32(id.key);
    const bucket = this.sink.bucketFor(keyHash);
    if (bucket >= 0) this.sink.takeRow(this, bucket, id.key, keyHash, (ev as { fields: string[] }).fields);
  }

  scanned(r: CsvRecordScanner): void {
    if (r.count === 1 && r.to[0] === r.from[0] && !r.partial) return; // an empty line: skipped, as Papa Parse does
    if (!this.firstSeen) {
      this.firstSeen = true;
      const fields = r.fields();
      if (isHeaderRecord(fields, this.options)) return this.event({ kind: 'header', columns: fields.map((f) => f.trim()) });
      return this.event({ kind: 'row', record: ++this.records, fields });
    }
    const mapper = this.mapperOrAbort();
    if (this.what === 'keys') {
      // Only the identifiers are needed: the scanner skips each record past them where it safely can.
      r.fieldsNeeded = mapper.identifierFields;
      const keyHash = this.writer.keyHashOf(r, mapper);
      if (keyHash !== null) return this.sink.noteOtherSegment(keyHash);
      r.scanWhole();
      return this.event({ kind: 'row', record: ++this.records, fields: r.fields() });
    }
    const need = this.writer.measure(r, mapper);
    if (need < 0) return this.event({ kind: 'row', record: ++this.records, fields: r.fields() });
    this.records++;
    this.sink.countRow(this.spec.segment);
    const bucket = this.sink.bucketFor(this.writer.keyHash);
    if (bucket >= 0) this.sink.takeLine(this, bucket, this.writer, r, need);
  }

  optionsFromHere(lineEnd: CsvOptions['lineEnd']): CsvOptions {
    const here = { ...this.options, lineEnd };
    return this.firstSeen ? { ...here, hasHeader: false, recordsBefore: this.records } : here;
  }

  private mapperOrAbort(): RowMapper {
    if (!this.mapper)
      throw new PartitionAborted(
        `Partition ${this.spec.blobName} has no header row and there is no model.json to name its columns`,
      );
    return this.mapper;
  }
}
