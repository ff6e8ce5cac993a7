// Streams one CSV partition as rows, never holding the file: real CSV (quoted fields, doubled
// quotes, embedded newlines, BOM) via Papa Parse, chosen for speed (about 5× csv-parse on this
// machine: the partition pass of a 10-million-row snapshot is the engine's hot path). A record the
// parser flags (e.g. an unclosed quote) becomes a rejected row with its reason; reading goes on.
// Rows go to a synchronous callback: no promise per row.
import type { Readable } from 'node:stream';
import Papa from 'papaparse';

export type CsvEvent =
  | { kind: 'header'; columns: string[] }
  /** `record` counts data records from 1. */
  | { kind: 'row'; record: number; fields: string[] }
  | { kind: 'bad'; record: number; reason: string };

export interface CsvOptions {
  delimiter: string;
  /** true/false as model.json says; undefined = a first row equal to `columns` is a header. */
  hasHeader: boolean | undefined;
  columns: string[];
  /** Data records before the input (read from a record boundary on): where `record` counts from. */
  recordsBefore?: number;
  /** The line end, when the input is read on from a record boundary (else Papa Parse guesses it). */
  lineEnd?: '\n' | '\r\n' | '\r';
}

/** Whether a header's name is a column's name: trimmed, in any case. */
export const sameName = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();

const sameNames = (a: string[], b: string[]) => a.length === b.length && a.every((v, i) => sameName(v, b[i]!));

/** Whether the file's first record is its header. */
export const isHeaderRecord = (fields: string[], options: CsvOptions): boolean =>
  options.hasHeader ?? (options.columns.length > 0 && sameNames(fields, options.columns));

/**
 * What to add to a rejected record's reason when a quoted field holds a newline: the record spans
 * several lines of the file, and an unclosed quote may have swallowed rows.
 */
export const spanNote = (fields: string[]) =>
  fields.some((f) => f.includes('\n')) ? ' (the record spans several lines: an unclosed quote may have joined rows)' : '';

export function readCsv(input: Readable, options: CsvOptions, onEvent: (ev: CsvEvent) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let first = true;
    let record = options.recordsBefore ?? 0;
    let failed = false;
    input.on('error', (e) => {
      failed = true;
      reject(e);
    });
    Papa.parse<string[]>(input as unknown as File, {
      delimiter: options.delimiter,
      newline: options.lineEnd,
      quoteChar: '"',
      escapeChar: '"',
      // Empty lines are skipped below, not by Papa Parse: it would skip them after numbering its
      // errors by row, and an error would then point at the row after the one it is about.
      skipEmptyLines: false,
      chunk: (results, parser) => {
        if (failed) return;
        // Papa reports errors by row index within the chunk.
        const bad = new Map<number, string>();
        for (const e of results.errors) if (e.row !== undefined && !bad.has(e.row)) bad.set(e.row, `${e.code}: ${e.message}`);
        const rows = results.data;
        try {
          for (let i = 0; i < rows.length; i++) {
            const fields = rows[i]!;
            if (fields.length === 1 && fields[0] === '') continue; // an empty line
            if (first) {
              first = false;
              if (fields[0]?.charCodeAt(0) === 0xfeff) fields[0] = fields[0].slice(1); // BOM
              if (isHeaderRecord(fields, options)) {
                onEvent({ kind: 'header', columns: fields.map((f) => f.trim()) });
                continue;
              }
            }
            const problem = bad.size ? bad.get(i) : undefined;
            if (problem) {
              // A record spanning lines may hold rows an unclosed quote swallowed: say so.
              onEvent({ kind: 'bad', record: ++record, reason: `malformed CSV: ${problem.slice(0, 200)}${spanNote(fields)}` });
              continue;
            }
            onEvent({ kind: 'row', record: ++record, fields });
          }
        } catch (e) {
          failed = true;
          parser.abort();
          reject(e);
        }
      },
      complete: () => {
        if (!failed) resolve();
      },
      error: (e: Error) => {
        failed = true;
        reject(e);
      },
    });
  });
}
