// The rejected-rows report of a run: where each refused row or profile was and why, never its
// contents (they hold personal data), as CSV safe to open in a spreadsheet. A run resumed over
// several attempts reports every attempt's refusals: rows refused on reading are found again by
// every attempt (each reads the whole snapshot), but profiles Braze refused are only in the
// attempt that sent their bucket, so those are carried over from the report already written.
import type { ContainerClient } from '@azure/storage-blob';
import Papa from 'papaparse';
import { MAX_REPORT_ROWS, type EngineResult, type RejectedRow } from '../engine';
import { statusOf } from '../store/table-errors';

const HEADER = 'segment,partition,record,profileId,reason';

/**
 * One CSV cell, safe to open in a spreadsheet: a cell starting with = + - @, a tab or a carriage
 * return would be read as a formula (CSV injection), so it gets a leading apostrophe (OWASP's advice).
 */
export const csvField = (v: string | number) => {
  let s = String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function rejectedCsv(rows: RejectedRow[], total: number): Buffer {
  const lines = [HEADER, ...rows.map((r) => [r.segment, r.partition, r.record, r.profileId, r.reason].map(csvField).join(','))];
  if (total > rows.length) lines.push(`,,,,"…and ${total - rows.length} more rows not listed"`);
  return Buffer.from(`${lines.join('\n')}\n`);
}

/** Braze's refusals listed in a report written earlier (rows without a segment, other than the "…more" line). */
function brazeRefusalsIn(csv: string): RejectedRow[] {
  const parsed = Papa.parse<string[]>(csv.trim(), { skipEmptyLines: true });
  return parsed.data
    .slice(1)
    .filter((cells) => cells[0] === '' && cells[3] !== '' && cells.length === 5)
    .map(([, partition, record, profileId, reason]) => ({
      segment: '',
      partition: partition!,
      record: record === '' ? '' : Number(record),
      profileId: profileId!,
      reason: reason!,
    }));
}

/** Writes the run's report (blob `name` in `container`), keeping earlier attempts' Braze refusals; returns its `container/name`. */
export async function writeRejectedReport(
  container: ContainerClient,
  name: string,
  result: EngineResult,
  earlierRefusals: number,
): Promise<string> {
  const blob = container.getBlockBlobClient(name);
  let carried: RejectedRow[] = [];
  if (earlierRefusals > 0) {
    try {
      carried = brazeRefusalsIn((await blob.downloadToBuffer()).toString('utf8')).slice(0, earlierRefusals);
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
    }
  }
  const rows = [...carried, ...result.rejectedRows].slice(0, MAX_REPORT_ROWS);
  const csv = rejectedCsv(rows, earlierRefusals + result.rejectedRowsTotal);
  await blob.upload(csv, csv.length, { blobHTTPHeaders: { blobContentType: 'text/csv; charset=utf-8' } });
  return `${container.containerName}/${name}`;
}
