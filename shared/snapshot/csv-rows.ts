// Streams one CSV partition as rows, never holding the file: real CSV (quoted fields, doubled
// quotes, embedded newlines, BOM) via csv-parse. A malformed record becomes a rejected row with its
// reason and line, and reading goes on.
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';

export type CsvEvent =
  | { kind: 'header'; columns: string[] }
  | { kind: 'row'; line: number; endLine: number; fields: string[] }
  | { kind: 'bad'; line: number; reason: string };

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

export async function* csvEvents(input: Readable, options: CsvOptions): AsyncGenerator<CsvEvent> {
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
    info: true,
  });
  const skipped: CsvEvent[] = [];
  parser.on('skip', (err: Error & { lines?: number; code?: string }) => {
    skipped.push({ kind: 'bad', line: err.lines ?? 0, reason: `malformed CSV: ${err.message.replace(/\s+/g, ' ').slice(0, 200)}` });
  });
  input.on('error', (e) => parser.destroy(e));
  input.pipe(parser);
  let first = true;
  let lastLine = 0;
  for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
    while (skipped.length) yield skipped.shift()!;
    const fields = item.record;
    const line = lastLine + 1;
    lastLine = item.info.lines;
    if (first) {
      first = false;
      const isHeader = options.hasHeader ?? (options.columns.length > 0 && sameNames(fields, options.columns));
      if (isHeader) {
        yield { kind: 'header', columns: fields.map((f) => f.trim()) };
        continue;
      }
    }
    yield { kind: 'row', line, endLine: item.info.lines, fields };
  }
  while (skipped.length) yield skipped.shift()!;
}
