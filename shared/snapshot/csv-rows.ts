// Streams one CSV partition as rows, never holding the file: real CSV (quoted fields, doubled
// quotes, embedded newlines, BOM) via csv-parse. A malformed record becomes a rejected row with its
// reason, and reading goes on. Rows are handed to a synchronous callback (no promise per row: this
// is the hot path of a 10-million-row snapshot).
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse';

export type CsvEvent =
  | { kind: 'header'; columns: string[] }
  /** `record` counts data records from 1; `multiline` when a quoted field spans lines. */
  | { kind: 'row'; record: number; fields: string[]; multiline: boolean }
  | { kind: 'bad'; record: number; reason: string };

export interface CsvOptions {
  delimiter: string;
  /** true/false as model.json says; undefined = a first row equal to `columns` is a header. */
  hasHeader: boolean | undefined;
  columns: string[];
  /** Longest record accepted, in characters (a bigger one is rejected, the rest read on). */
  maxRecordChars?: number;
}

const sameNames = (a: string[], b: string[]) =>
  a.length === b.length && a.every((v, i) => v.trim().toLowerCase() === b[i]!.trim().toLowerCase());

export async function readCsv(input: Readable, options: CsvOptions, onEvent: (ev: CsvEvent) => void): Promise<void> {
  const parser = parse({
    bom: true,
    delimiter: options.delimiter,
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    // A stray quote inside a field is kept as text: csv-parse's recovery from a strict quote error
    // can swallow the following rows, and a row must never vanish without a count.
    relax_quotes: true,
    max_record_size: options.maxRecordChars ?? 4 * 1024 * 1024,
  });
  let first = true;
  let record = 0;
  // A callback that throws stops the read with its error (instead of escaping the stream).
  const emit = (ev: CsvEvent) => {
    try {
      onEvent(ev);
    } catch (e) {
      parser.destroy(e as Error);
    }
  };
  parser.on('skip', (err: Error) => {
    emit({ kind: 'bad', record: ++record, reason: `malformed CSV: ${err.message.replace(/\s+/g, ' ').slice(0, 200)}` });
  });
  parser.on('data', (fields: string[]) => {
    if (first) {
      first = false;
      const isHeader = options.hasHeader ?? (options.columns.length > 0 && sameNames(fields, options.columns));
      if (isHeader) return emit({ kind: 'header', columns: fields.map((f) => f.trim()) });
    }
    let multiline = false;
    for (const f of fields) if (f.includes('\n')) multiline = true;
    emit({ kind: 'row', record: ++record, fields, multiline });
  });
  await pipeline(input, parser);
}
