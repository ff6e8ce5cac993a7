// Loads `local.settings.json` (or the committed sample) into process.env, as `func start` does.
// Variables already set in the environment win.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { appRoot } from '../shared/app-root';

export const repoRoot = appRoot;

export function readLocalSettings(): Record<string, string> {
  const own = path.join(repoRoot, 'local.settings.json');
  const file = existsSync(own) ? own : path.join(repoRoot, 'local.settings.sample.json');
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { Values?: Record<string, string> };
  return parsed.Values ?? {};
}

export function loadLocalSettings(): void {
  for (const [k, v] of Object.entries(readLocalSettings())) if (process.env[k] === undefined) process.env[k] = v;
}

/**
 * The project's own local host listens on 127.0.0.1 only, so there the local trust settings may be
 * on: calls without a principal act as Admin, and test principals are trusted. The sample settings
 * keep them off, because `func start` may listen on every interface, where anyone on the network
 * could name a loopback Host. A setting given in the environment itself (`keep`) wins.
 */
export function trustLoopbackCallers(keep: ReadonlySet<string> = new Set()): void {
  for (const name of ['LOCAL_ANONYMOUS_ADMIN', 'LOCAL_TRUST_PRINCIPAL_HEADER']) if (!keep.has(name)) process.env[name] = 'true';
}
