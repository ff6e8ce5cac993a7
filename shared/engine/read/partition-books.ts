// The partition step's books: rows read per segment, rows refused (with their reasons, up to a
// limit), and which mapped fields the tables have; progress reported as rows go by.
import type { PartitionSummary, RejectedRow } from '../thread/protocol';
import type { ColumnsSeen } from './column-check';

export const MAX_REPORT_ROWS = 50_000;
const PROGRESS_EVERY_ROWS = 20_000;

export class PartitionBooks {
  private readonly summary: PartitionSummary = {
    rowsRead: 0,
    rowsRejected: 0,
    segmentRows: {},
    rejectedRows: [],
    foundFields: [],
    missingFields: [],
  };
  readonly columnsSeen: ColumnsSeen = { found: new Set(), missing: new Map() };

  constructor(
    segments: readonly string[],
    /** Live progress, and a heartbeat so a long read is not mistaken for a dead worker. */
    private readonly progress: (rowsRead: number, segmentRows: Record<string, number>) => void,
  ) {
    for (const s of segments) this.summary.segmentRows[s] = 0;
  }

  /** A row to count (and report progress on): every data record of the snapshot is one. */
  countRow(segment: string): void {
    const s = this.summary;
    s.rowsRead++;
    s.segmentRows[segment]!++;
    if (s.rowsRead % PROGRESS_EVERY_ROWS === 0) this.progress(s.rowsRead, s.segmentRows);
  }

  /** A row refused: counted, and reported (up to a limit) with its reason. */
  reject(row: RejectedRow): void {
    const s = this.summary;
    s.rowsRejected++;
    if (s.rejectedRows.length < MAX_REPORT_ROWS) s.rejectedRows.push(row);
  }

  /** The summary once every partition is read. */
  closed(): PartitionSummary {
    this.summary.foundFields = [...this.columnsSeen.found];
    this.summary.missingFields = [...this.columnsSeen.missing];
    return this.summary;
  }
}
