// A test file's storage: an account of its own on the run's shared Azurite (see shared-azurite.ts),
// or, when a file runs outside that setup, an Azurite of its own.
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { inject } from 'vitest';
import { azuriteConnectionString, startAzurite, type Azurite } from '../../scripts/azurite';

export interface TestStorage extends Azurite {
  account: string;
}

export async function claimAzurite(): Promise<TestStorage> {
  const shared = inject('azurite');
  if (!shared) return { ...(await startAzurite()), account: 'devstoreaccount1' };
  for (const account of shared.accounts) {
    try {
      closeSync(openSync(path.join(shared.claims, account), 'wx'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw e;
    }
    // The account is this file's for the run; its data goes when the shared Azurite stops.
    return {
      connectionString: azuriteConnectionString(shared.ports, account),
      ports: shared.ports,
      pid: shared.pid,
      account,
      stop: async () => {},
    };
  }
  throw new Error('every account of the shared Azurite is taken: raise ACCOUNTS in test/helpers/shared-azurite.ts');
}
