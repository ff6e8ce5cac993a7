// vitest globalSetup: one Azurite for a whole test run, with a storage account per test file.
// Starting Azurite costs each file a second or two of CPU; an account of its own keeps every file
// as separate from the others as its own Azurite did (tables, containers and queues included).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startAzurite, type Azurite } from '../../scripts/azurite';

/** More than the files of one project, so a file never waits for an account. */
const ACCOUNTS = 160;

export interface SharedAzurite {
  ports: Azurite['ports'];
  pid: number;
  accounts: string[];
  /** A folder where a file claims an account by creating a file named for it (exclusive create). */
  claims: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    azurite?: SharedAzurite;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const accounts = Array.from({ length: ACCOUNTS }, (_, i) => `testfile${String(i).padStart(3, '0')}`);
  const azurite = await startAzurite({ extraAccounts: accounts });
  const claims = mkdtempSync(path.join(os.tmpdir(), 'azurite-claims-'));
  project.provide('azurite', { ports: azurite.ports, pid: azurite.pid, accounts, claims });
  return async () => {
    await azurite.stop();
    rmSync(claims, { recursive: true, force: true });
  };
}
