// Wiring for engine tests: a Braze sandbox on loopback, the sample export in Azurite, and a
// connection + export created through the app's own services.
import { afterAll, beforeAll } from 'vitest';
import { encodePrincipal } from '../../shared/auth';
import { BrazeClient } from '../../shared/braze/client';
import { RequestBudget } from '../../shared/braze/request-budget';
import { SyncStateStore, type EngineInput } from '../../shared/engine';
import { GUARD_OFF } from '../../shared/exports/schema';
import { services } from '../../shared/services';
import { locateSnapshot, type Snapshot } from '../../shared/snapshot/locate';
import { CONTAINERS } from '../../shared/store/clients';
import { BrazeSandbox, SANDBOX_KEY, type SandboxOptions } from '../../scripts/braze-sandbox';
import { SAMPLE_CONTAINER, SAMPLE_FOLDER, SAMPLE_MATCHING, SAMPLE_SEGMENTS } from '../../scripts/sample-data';
import type { Caller } from '../../shared/auth';
import { MATCHING, writeCiExport, type TableSpec } from './ci-export';

export const ADMIN: Caller = { role: 'Admin', name: 'test-admin' };
export { SANDBOX_KEY };

export function useSandbox(options: SandboxOptions = {}): () => BrazeSandbox {
  let sandbox: BrazeSandbox;
  beforeAll(async () => {
    sandbox = new BrazeSandbox(options);
    await sandbox.start();
  });
  afterAll(async () => sandbox?.stop());
  return () => sandbox;
}

let counter = 0;

export async function createConnection(sandboxUrl: string, over: Record<string, unknown> = {}) {
  const app = services();
  const stored = await app.connections.create(ADMIN, {
    displayName: `Sandbox ${++counter}-${Date.now()}`,
    restEndpoint: sandboxUrl,
    apiKey: SANDBOX_KEY,
    consent: true,
    requestBudget: 3000,
    ...over,
  });
  return stored.value;
}

/** POST /api/exports body for the bundled sample export. */
export const sampleExportBody = (connectionId: string, name = `Sample export ${++counter}`) => ({
  name,
  connectionId,
  brazeSegmentApiId: '0000-0000-0000',
  source: { container: SAMPLE_CONTAINER, folder: SAMPLE_FOLDER },
  segments: [...SAMPLE_SEGMENTS],
  matching: SAMPLE_MATCHING,
  schedule: { enabled: true },
});

/** A guard that never holds: the engine tests change whole snapshots on purpose (the guard has tests of its own). */
export const UNGUARDED = GUARD_OFF;

export async function createExport(connectionId: string, over: Record<string, unknown> = {}) {
  const stored = await services().exports.create(ADMIN, { ...sampleExportBody(connectionId), guard: UNGUARDED, ...over });
  return stored.value;
}

/** Queues a run and executes it in this process, as the queue worker would; returns the finished run. */
export async function runNow(exportId: string, options: { fullSync?: boolean } = {}) {
  const app = services();
  const outcome = await app.runs.runNow(ADMIN, exportId, options.fullSync ?? false);
  if (!('queued' in outcome)) throw new Error('a run is already active');
  const logs: string[] = [];
  // Drain our message from the queue so it does not linger for other tests.
  await app.storage.runQueue.clearMessages();
  for (let i = 0; i < 20; i++) {
    await app.worker.execute(outcome.queued.id, (l) => logs.push(l));
    const run = await app.runs.get(outcome.queued.id);
    if (run.status !== 'running' && run.status !== 'queued') return { run, logs };
  }
  throw new Error('run did not finish');
}

export const adminHeader = () => ({ 'x-ms-client-principal': encodePrincipal('Admin') });

/** Profiles as comparable rows, sorted: identifier + attributes. */
export function normalizeProfiles(profiles: { identifier: unknown; attributes: Record<string, unknown> }[]) {
  return profiles
    .map((p) => ({
      identifier: p.identifier,
      attributes: Object.fromEntries(Object.entries(p.attributes).sort(([a], [b]) => a.localeCompare(b))),
    }))
    .sort((a, b) => JSON.stringify(a.identifier).localeCompare(JSON.stringify(b.identifier)));
}

/** An export whose snapshot can be rewritten in place (same folder, new timestamp), and patched as an Admin. */
export async function mutableExport(sandboxUrl: string, tables: TableSpec[], over: Record<string, unknown> = {}) {
  const blobs = services().storage.ciBlobs;
  const source = await writeCiExport(blobs, tables);
  const connection = await createConnection(sandboxUrl);
  const exp = await createExport(connection.id, { source, segments: tables.map((t) => t.segment), matching: MATCHING, ...over });
  let stamp = 0;
  return {
    exp,
    rewrite: (next: TableSpec[]) => writeCiExport(blobs, next, { folder: source.folder, stamp: `2026/11/2${++stamp}/0615` }),
    patch: (body: Record<string, unknown>) => services().exports.update(ADMIN, exp.id, body, null),
  };
}

/**
 * The engine's input for `exp` on `snapshot`, for a test that calls runExport itself (attempts
 * played by hand): the export's sync state in Azurite, the sandbox as Braze at 300 requests a window.
 */
export function engineInput(
  exp: EngineInput['definition'] & { id: string },
  snapshot: Snapshot,
  sandboxUrl: string,
): EngineInput {
  const app = services();
  return {
    definition: exp,
    snapshot,
    ciBlobs: app.storage.ciBlobs,
    state: new SyncStateStore(app.storage.appBlobs.getContainerClient(CONTAINERS.state), exp.id),
    braze: new BrazeClient({ baseUrl: sandboxUrl, apiKey: SANDBOX_KEY, budget: new RequestBudget({ requestsPerWindow: 300 }) }),
    fullSync: false,
  };
}

/** engineInput for a new export of `tables` (its snapshot written to Azurite and located), for a test that calls runExport itself. */
export async function newExportInput(sandboxUrl: string, tables: TableSpec[]): Promise<EngineInput> {
  const blobs = services().storage.ciBlobs;
  const source = await writeCiExport(blobs, tables);
  const segments = tables.map((t) => t.segment);
  const exp = await createExport((await createConnection(sandboxUrl)).id, { source, segments, matching: MATCHING });
  return engineInput(exp, await locateSnapshot(blobs, exp.source, exp.segments), sandboxUrl);
}
