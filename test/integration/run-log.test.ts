// Every way a run ends failed leaves one line of one shape, and the template's alert query matches it.
import { InvocationContext } from '@azure/functions';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportWorkerPoison } from '../../functions/exportWorkerPoison';
import { scheduledRefresh } from '../../functions/scheduledRefresh';
import { RUN_ENDED_PATTERN, runEndedLine, type RunEndedBy } from '../../shared/runs/run-log';
import { services } from '../../shared/services';
import { useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { ADMIN, createConnection, createExport, useSandbox } from '../helpers/engine';

const ROOT = path.join(__dirname, '..', '..');
const template = JSON.parse(readFileSync(path.join(ROOT, 'infra', 'azuredeploy.json'), 'utf8'));
const rule = template.resources.find((r: { type: string }) => r.type === 'Microsoft.Insights/scheduledQueryRules');
const query: string = rule.properties.criteria.allOf[0].query;
const pattern = new RegExp(RUN_ENDED_PATTERN);

/** What the alert query keeps of a line: run, export, status, source (null: not a run-ended line). */
function parsed(line: string) {
  const m = pattern.exec(line);
  return m ? { runId: m[1], exportId: m[2], status: m[3], source: m[4] } : null;
}

describe('the run-ended line', () => {
  it('has one shape for every source, counts before the source, errors last and on one line', () => {
    const sources: RunEndedBy[] = ['worker', 'stall-check', 'poison-queue', 'timer'];
    for (const by of sources) {
      const line = runEndedLine({ runId: 'r1', exportId: 'e1', status: 'failed', by, errors: ['first\nsecond', 'third'] });
      expect(parsed(line), line).toEqual({ runId: 'r1', exportId: 'e1', status: 'failed', source: by });
      expect(line).toMatch(/ error=first second; third$/);
    }
    const counted = runEndedLine({
      runId: 'r2',
      exportId: 'e2',
      status: 'succeeded',
      by: 'worker',
      counts: { rowsRead: 7, profiles: 6, sent: 5, unchanged: 1, rejected: 0, failed: 0, removed: 0 },
    });
    expect(counted).toBe(
      'run r2 export e2: succeeded rowsRead=7 profiles=6 sent=5 unchanged=1 rejected=0 failed=0 removed=0 source=worker',
    );
    expect(parsed(counted)).toMatchObject({ status: 'succeeded', source: 'worker' });
    // A timer error names no run (and maybe no export).
    expect(parsed(runEndedLine({ runId: null, exportId: null, status: 'failed', by: 'timer', errors: ['boom'] }))).toEqual({
      runId: '-',
      exportId: '-',
      status: 'failed',
      source: 'timer',
    });
    // Other lines are not run-ended lines.
    expect(parsed('run r1 export e1: started (attempt 1, trigger manual)')).toBeNull();
    expect(parsed('scheduledRefresh: queued=1 unchanged=0 skipped=0 requeued=0 errors=0')).toBeNull();
  });

  it('is what the alert query extracts run, export, status and source with, in that order', () => {
    for (const group of [1, 2, 3, 4]) expect(query).toContain(`extract(@"${RUN_ENDED_PATTERN}", ${group}, Message)`);
    expect(query).toMatch(/status == "failed"/);
    // A run the guard held waits for a person: it alerts as a failed one does.
    expect(query).toMatch(/status == "held"/);
    expect(
      parsed(runEndedLine({ runId: 'r3', exportId: 'e3', status: 'held', by: 'worker', errors: ['30 of 100 leave'] })),
    ).toEqual({
      runId: 'r3',
      exportId: 'e3',
      status: 'held',
      source: 'worker',
    });
  });

  it('is logged by every place a run ends: the worker, the stall check, the poison queue, the timer', () => {
    const uses = (file: string, by: RunEndedBy) =>
      expect(readFileSync(path.join(ROOT, file), 'utf8'), file).toMatch(new RegExp(`runEndedLine\\([^;]*by: '${by}'`, 's'));
    uses('shared/runs/worker.ts', 'worker');
    uses('shared/runs/scheduler.ts', 'stall-check');
    uses('functions/exportWorkerPoison.ts', 'poison-queue');
    uses('functions/scheduledRefresh.ts', 'timer');
  });
});

describe('failure paths on Azurite', () => {
  useAzurite();
  const sandbox = useSandbox();

  async function exportOf() {
    const app = services();
    const conn = await createConnection(sandbox().url);
    return createExport(conn.id, {
      source: await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(3)] }]),
      segments: ['S'],
      matching: MATCHING,
    });
  }
  const contextLogging = (lines: string[], functionName: string) =>
    new InvocationContext({ invocationId: functionName, functionName, logHandler: (_l, ...a) => lines.push(a.join(' ')) });

  it('the poison queue: the run it fails logs a failed line with source=poison-queue', async () => {
    const app = services();
    const exp = await exportOf();
    const outcome = await app.runs.runNow(ADMIN, exp.id, false);
    const runId = 'queued' in outcome ? outcome.queued.id : '';
    await app.storage.runQueue.clearMessages();
    const lines: string[] = [];
    await exportWorkerPoison({ runId }, contextLogging(lines, 'exportWorkerPoison'));
    expect(lines.map(parsed)).toContainEqual({ runId, exportId: exp.id, status: 'failed', source: 'poison-queue' });
  });

  it('the stall check: a run no worker picks up after the re-queues ends failed with source=stall-check', async () => {
    const app = services();
    const exp = await exportOf();
    const outcome = await app.runs.start((await app.exports.get(exp.id)).value, 'manual', 'test');
    const runId = 'queued' in outcome ? outcome.queued.id : '';
    const lines: string[] = [];
    // Each tick 11 minutes after the one before finds the run silent: re-queued five times, then failed.
    for (let tick = 1; tick <= 6; tick++) {
      await app.storage.runQueue.clearMessages();
      await app.scheduler.tick(new Date(Date.now() + tick * 11 * 60_000), (l) => lines.push(l));
    }
    expect((await app.runs.get(runId)).status).toBe('failed');
    expect(lines.map(parsed)).toContainEqual({ runId, exportId: exp.id, status: 'failed', source: 'stall-check' });
  });

  it('the timer: an export it cannot check logs a failed line with source=timer', async () => {
    const app = services();
    const broken = await exportOf();
    const stored = await app.storage.table('exports').getEntity<{ data: string }>('export', broken.id);
    const data = JSON.parse(stored.data);
    data.schedule.cron = 'at noon'; // a stored schedule the timer cannot parse
    await app.storage
      .table('exports')
      .updateEntity({ partitionKey: 'export', rowKey: broken.id, data: JSON.stringify(data) }, 'Replace');
    const lines: string[] = [];
    await scheduledRefresh(
      { isPastDue: false, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } },
      contextLogging(lines, 'scheduledRefresh'),
    );
    expect(lines.map(parsed)).toContainEqual({ runId: '-', exportId: broken.id, status: 'failed', source: 'timer' });
  });
});
