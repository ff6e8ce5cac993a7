// What GET /api/health reports: settings valid, app storage and the key store reachable, whether
// Easy Auth is on, version, the cores the instance gives. Names what is wrong, never a value. The
// checks run at most once per CACHE_MS per instance: the route is anonymous, so it must not let
// anyone hammer Key Vault.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONTAINERS, TABLES } from './store/clients';
import { authenticate } from './auth';
import { easyAuthEnabledIn } from './config';
import { firstLine } from './errors';
import { services, type Services } from './services';
import { appRoot } from './app-root';
import { isLoopbackRequest } from './loopback';

interface Check {
  ok: boolean;
  detail: string;
}

const TIMEOUT_MS = 5000;
export const CACHE_MS = 30_000;

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  version: string;
  /** When the checks ran (answers within CACHE_MS of it reuse them). */
  checkedAt: string;
  /** App Service Authentication is on (WEBSITE_AUTH_ENABLED): without it every signed-in call is refused. */
  easyAuthDetected: boolean;
  /**
   * The cores this instance gives the app (os.availableParallelism(): affinity and, on Node 22, the
   * cgroup CPU quota). With one, the export engine reads on a single thread, no helper beside it.
   */
  cores: number;
  checks: Record<string, Check>;
}

const version = (() => {
  try {
    return (JSON.parse(readFileSync(path.join(appRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

async function probe(fn: () => Promise<string>): Promise<Check> {
  try {
    const detail = await Promise.race([
      fn(),
      new Promise<string>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${TIMEOUT_MS} ms`)), TIMEOUT_MS)),
    ]);
    return { ok: true, detail };
  } catch (e) {
    return { ok: false, detail: firstLine(e) };
  }
}

const cache = new WeakMap<Services, { at: number; report: Promise<HealthReport> }>();

export async function checkHealth(): Promise<HealthReport> {
  let app;
  try {
    app = services();
  } catch (e) {
    return {
      status: 'unhealthy',
      version,
      checkedAt: new Date().toISOString(),
      easyAuthDetected: easyAuthEnabledIn(),
      cores: os.availableParallelism(),
      checks: { config: { ok: false, detail: (e as Error).message } },
    };
  }
  const cached = cache.get(app);
  if (cached && Date.now() - cached.at < CACHE_MS) return cached.report;
  const report = runChecks(app);
  cache.set(app, { at: Date.now(), report });
  return report;
}

async function runChecks(app: Services): Promise<HealthReport> {
  const checkedAt = new Date().toISOString();
  const { storage, secrets } = app;
  const checks: Record<string, Check> = { config: { ok: true, detail: 'settings valid' } };
  [checks.storage, checks.keyVault] = await Promise.all([
    probe(async () => {
      await app.ready;
      await Promise.all([
        storage
          .table(TABLES.exports)
          .listEntities({ queryOptions: { filter: "PartitionKey eq 'health'" } })
          .byPage({ maxPageSize: 1 })
          .next(),
        storage.appBlobs.getContainerClient(CONTAINERS.state).getProperties(),
        storage.runQueue.getProperties(),
      ]);
      return 'tables, blobs and the run queue answer';
    }),
    probe(() => secrets.check()),
  ]);
  return {
    status: Object.values(checks).every((c) => c.ok) ? 'healthy' : 'unhealthy',
    version,
    checkedAt,
    easyAuthDetected: app.config.easyAuthEnabled,
    cores: os.availableParallelism(),
    checks,
  };
}

/** Whether the caller of GET /api/health is an Admin, who sees the checks (anyone else: the status only). */
export function callerIsAdmin(headers: { get(name: string): string | null }, url?: string): boolean {
  let config;
  try {
    config = services().config;
  } catch {
    // Settings are broken: only an Easy Auth principal can be believed (the log names the setting).
    config = { easyAuthEnabled: easyAuthEnabledIn(), trustPrincipalHeaderLocally: false };
  }
  // A principal header trusted by a local-only setting counts only on a loopback request (see loopback.ts).
  if (config.trustPrincipalHeaderLocally && !isLoopbackRequest(headers, url)) return false;
  try {
    return authenticate(headers, { ...config, anonymousAdmin: false }).role === 'Admin';
  } catch {
    return false;
  }
}
