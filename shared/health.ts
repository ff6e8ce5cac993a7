// What GET /api/health reports: settings valid, app storage and the key store reachable, version.
// Names what is wrong, never a value.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CONTAINERS, TABLES } from './store/clients';
import { services } from './services';
import { appRoot } from './app-root';

interface Check {
  ok: boolean;
  detail: string;
}

const TIMEOUT_MS = 5000;

const version = (() => {
  try {
    return (JSON.parse(readFileSync(path.join(appRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

async function probe(fn: () => Promise<string>): Promise<Check> {
  try {
    const detail = await Promise.race([fn(), new Promise<string>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${TIMEOUT_MS} ms`)), TIMEOUT_MS))]);
    return { ok: true, detail };
  } catch (e) {
    return { ok: false, detail: (e as Error).message.split('\n')[0]!.slice(0, 300) };
  }
}

export async function checkHealth(): Promise<{ status: 'healthy' | 'unhealthy'; version: string; checks: Record<string, Check> }> {
  let app;
  try {
    app = services();
  } catch (e) {
    return { status: 'unhealthy', version, checks: { config: { ok: false, detail: (e as Error).message } } };
  }
  const { storage, secrets } = app;
  const checks: Record<string, Check> = { config: { ok: true, detail: 'settings valid' } };
  [checks.storage, checks.keyVault] = await Promise.all([
    probe(async () => {
      await app.ready;
      await Promise.all([
        storage.table(TABLES.exports).listEntities({ queryOptions: { filter: "PartitionKey eq 'health'" } }).byPage({ maxPageSize: 1 }).next(),
        storage.appBlobs.getContainerClient(CONTAINERS.state).getProperties(),
        storage.runQueue.getProperties(),
      ]);
      return 'tables, blobs and the run queue answer';
    }),
    probe(() => secrets.check()),
  ]);
  return { status: Object.values(checks).every((c) => c.ok) ? 'healthy' : 'unhealthy', version, checks };
}
