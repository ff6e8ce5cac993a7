// Playing the queue worker in a test: queue a run and take its message off the queue, an export
// of generated profiles, waiting for a condition, and whether an export is free for new runs.
import type { BrazeSandbox } from '../../scripts/braze-sandbox';
import { services } from '../../shared/services';
import { MATCHING, rows, writeCiExport } from './ci-export';
import { ADMIN, createConnection, createExport } from './engine';

export const noLog = () => undefined;

/** Queues a run of the export and takes its message off the queue: the test plays the worker. */
export async function queueRun(exportId: string, fullSync = false): Promise<string> {
  const app = services();
  const outcome = await app.runs.runNow(ADMIN, exportId, fullSync);
  if (!('queued' in outcome)) throw new Error(`a run is already ${outcome.active.status}`);
  await app.storage.runQueue.clearMessages();
  return outcome.queued.id;
}

/** An export of `profiles` generated profiles in one segment, on a new connection to the sandbox. */
export async function exportOf(sandbox: BrazeSandbox, profiles: number, connection: Record<string, unknown> = {}) {
  const app = services();
  const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(profiles)] }]);
  const conn = await createConnection(sandbox.url, connection);
  return { exp: await createExport(conn.id, { source, segments: ['S'], matching: MATCHING }), source, conn };
}

export const until = async (what: () => boolean | Promise<boolean>, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** The export takes new runs again (no active run holds it). */
export async function exportIsFree(exportId: string): Promise<boolean> {
  return !(await services().exports.view((await services().exports.get(exportId)).value)).lastRun
    ? true
    : await services()
        .storage.table('exports')
        .getEntity<{ data: string }>('state', exportId)
        .then((e) => JSON.parse(e.data).activeRunId === null);
}
