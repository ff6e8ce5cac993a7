// The one log line for every way a run ends, whoever ends it: the worker, the stall check, the
// poison queue, or the timer failing before any run could start. The alert query in
// infra/azuredeploy.json matches this shape (RUN_ENDED_PATTERN) and nothing else, so a new way of
// ending a run alerts as soon as it logs through here.
//
//   run <runId> export <exportId>: <status>[ <count>=<n>…] source=<who>[ error=<messages>]
//
// `-` stands for an id there is none of (a timer error names no run, maybe no export). Errors come
// last and on one line; they are the run's own messages (no keys, no row contents).
import type { RunStatus } from '../store/runs';

export type RunEndedBy = 'worker' | 'stall-check' | 'poison-queue' | 'timer';

export interface RunEnded {
  runId: string | null;
  exportId: string | null;
  status: RunStatus;
  by: RunEndedBy;
  counts?: Partial<Record<(typeof COUNT_NAMES)[number], number>> | null;
  errors?: readonly string[];
}

const COUNT_NAMES = ['rowsRead', 'profiles', 'sent', 'unchanged', 'rejected', 'failed', 'removed'] as const;

/** The line's shape as a regular expression both JavaScript and Kusto (RE2) read alike: run, export, status, source. */
export const RUN_ENDED_PATTERN = String.raw`^run (\S+) export (\S+): (\w+)(?: \w+=\d+)* source=([a-z-]+)`;

export function runEndedLine(e: RunEnded): string {
  const counts = e.counts
    ? COUNT_NAMES.filter((n) => typeof e.counts![n] === 'number')
        .map((n) => ` ${n}=${e.counts![n]}`)
        .join('')
    : '';
  const errors = (e.errors ?? []).map((m) => m.replace(/\s+/g, ' ').trim()).filter(Boolean);
  return (
    `run ${e.runId || '-'} export ${e.exportId || '-'}: ${e.status}${counts} source=${e.by}` +
    (errors.length ? ` error=${errors.join('; ')}` : '')
  );
}
