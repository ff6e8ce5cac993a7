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
