// The two ways a partition's bytes become rows. Papa Parse (snapshot/csv-rows.ts) hands every row
// over as strings: what mapping a row at once needs. The CSV scanner (snapshot/csv-scanner.ts)
// hands over records as byte ranges, for rows that are only spilled (a run that sends nothing while
// reading); it leaves the rest of a partition to Papa Parse from the first record it might read
// otherwise. Both read bytes piece by piece, as they are downloaded.
import { TextDecoder } from 'node:util';
import { readCsv, type CsvEvent, type CsvOptions } from '../../snapshot/csv-rows';
import { CsvRecordScanner, papaLineEnd, showsLineEnd } from '../../snapshot/csv-scanner';
import { CsvFeed } from './csv-feed';

/** A partition's CSV being read. */
export interface OpenPartition {
  /** The next bytes (used at once, not kept). */
  push(bytes: Uint8Array): void;
  /** The partition is complete: resolves once its last rows are taken. */
  end(): Promise<void>;
}

/** What takes a partition's rows: as Papa Parse reads them, or as the scanner does. */
export interface RowTaker {
  event(ev: CsvEvent): void;
  /** A record the scanner read; the scanner skips nothing (empty lines included). */
  scanned(record: CsvRecordScanner): void;
  /** How Papa Parse reads on from where the scanner stopped (the header, and records, already taken). */
  optionsFromHere(lineEnd: CsvOptions['lineEnd']): CsvOptions;
}

export function papaReader(options: CsvOptions, onEvent: (ev: CsvEvent) => void, onError: (e: unknown) => void): OpenPartition {
  const feed = new CsvFeed();
  const decoder = new TextDecoder('utf-8');
  // Read on from a record boundary, the line end is known; else it is guessed from the file's first
  // text once that shows it (as the scanner does), not from a first piece cut anywhere.
  let reading: Promise<void> | null = null;
  let held = '';
  const start = (lineEnd: CsvOptions['lineEnd']) => {
    reading = readCsv(feed.stream, { ...options, lineEnd }, onEvent);
    reading.catch(onError);
  };
  if (options.lineEnd) start(options.lineEnd);
  const push = (text: string) => {
    if (!reading) {
      held += text;
      if (!showsLineEnd(held)) return;
      start(papaLineEnd(held));
      [text, held] = [held, ''];
    }
    if (text) feed.push(text);
  };
  return {
    push: (bytes) => push(decoder.decode(bytes, { stream: true })),
    end: async () => {
      const rest = decoder.decode();
      if (rest) push(rest);
      if (!reading) start(papaLineEnd(held));
      if (held) feed.push(held);
      feed.end();
      await reading;
    },
  };
}

export function scannedReader(
  delimiter: string,
  taker: RowTaker,
  onError: (e: unknown) => void,
  carryCompletionBytes?: number,
): OpenPartition {
  const scanner = new CsvRecordScanner(delimiter, (r) => taker.scanned(r), carryCompletionBytes);
  let papa: OpenPartition | null = null;
  const readOnWithPapa = () => {
    if (!scanner.unusual || papa) return;
    papa = papaReader(taker.optionsFromHere(scanner.lineEnd), (ev) => taker.event(ev), onError);
    papa.push(scanner.rest!);
  };
  return {
    push: (bytes) => {
      if (papa) return papa.push(bytes);
      scanner.push(bytes);
      readOnWithPapa();
    },
    end: async () => {
      if (!papa) scanner.end();
      readOnWithPapa();
      if (papa) await (papa as OpenPartition).end();
    },
  };
}
