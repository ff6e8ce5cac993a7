// npm run package: a zip that deploys as is, with nothing that should not ship.
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { buildPackage } from '../../scripts/package';

function entries(zip: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(zip, { lazyEntries: true }, (err, file) => {
      if (err || !file) return reject(err);
      const names: string[] = [];
      file.on('entry', (e: yauzl.Entry) => {
        names.push(e.fileName);
        file.readEntry();
      });
      file.on('end', () => resolve(names));
      file.readEntry();
    });
  });
}

/** Settings as the template gives them in Azure (identity-based, no secrets): enough to load the app. */
const AZURE_SETTINGS = {
  AzureWebJobsStorage__accountName: 'examplestorage',
  CI_EXPORT_STORAGE_BLOB_URL: 'https://examplestorage.blob.core.windows.net',
  KEY_VAULT_URI: 'https://example-vault.vault.azure.net',
};

/** Loads the functions, then every other module of the app (the engine thread's needs a worker). */
const LOAD_EVERY_MODULE = `
  require('./dist/functions/index.js');
  const { readdirSync } = require('node:fs');
  for (const f of readdirSync('dist', { recursive: true }))
    if (f.endsWith('.js') && !f.startsWith('console') && !f.endsWith('engine-thread.js')) require('./dist/' + f);
  console.log('loaded');
`;

/** Unpacks the zip into a new folder (as Azure does before it starts the app). */
function unpack(zip: string): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ci-braze-unpacked-'));
  return new Promise((resolve, reject) => {
    yauzl.open(zip, { lazyEntries: true }, (err, file) => {
      if (err || !file) return reject(err);
      file.on('entry', (e: yauzl.Entry) => {
        const to = path.join(dir, e.fileName);
        mkdirSync(path.dirname(to), { recursive: true });
        file.openReadStream(e, (readErr, stream) => {
          if (readErr || !stream) return reject(readErr);
          pipeline(stream, createWriteStream(to)).then(() => file.readEntry(), reject);
        });
      });
      file.on('end', () => resolve(dir));
      file.on('error', reject);
      file.readEntry();
    });
  });
}

describe('deployment package', () => {
  it('starts with host.json and package.json and holds only what runs in Azure', async () => {
    const zip = await buildPackage(path.join(os.tmpdir(), `ci-braze-test-${process.pid}.zip`));
    const names = await entries(zip);
    expect(names.slice(0, 2)).toEqual(['host.json', 'package.json']);
    expect(names).toContain('dist/functions/index.js');
    // The web console, bundled at build: its page and one hashed script and stylesheet.
    expect(names).toContain('dist/console/index.html');
    expect(names.filter((n) => /^dist\/console\/app\.[A-Z0-9]+\.js$/.test(n))).toHaveLength(1);
    for (const devOnly of ['esbuild', 'playwright-core', 'axe-core'])
      expect(
        names.some((n) => n.startsWith(`node_modules/${devOnly}/`)),
        devOnly,
      ).toBe(false);
    expect(names).toContain('node_modules/@azure/functions/package.json');
    expect(names).toContain('node_modules/papaparse/package.json');
    for (const devOnly of ['vitest', 'azurite', 'typescript', 'yazl', '@types/node']) {
      expect(
        names.some((n) => n.startsWith(`node_modules/${devOnly}/`)),
        devOnly,
      ).toBe(false);
    }
    expect(names.some((n) => /^(test|scripts|dist\/scripts|functions|shared)\//.test(n))).toBe(false);
    expect(names.some((n) => /local\.settings|\.ts$|\.map$/.test(n) && !n.startsWith('node_modules/'))).toBe(false);
    // What Node never loads is left out of dependencies (source maps, types, browser builds)…
    expect(names.filter((n) => /\.map$|\.d\.ts$|\/dist\/(browser|react-native)\//.test(n))).toEqual([]);
    // …and the app still loads from the unpacked zip: its functions, and the engine's thread.
    const unpacked = await unpack(zip);
    try {
      const loaded = execFileSync(process.execPath, ['-e', LOAD_EVERY_MODULE], {
        cwd: unpacked,
        env: { PATH: process.env.PATH, ...AZURE_SETTINGS },
        encoding: 'utf8',
      });
      expect(loaded.trim()).toBe('loaded');
    } finally {
      rmSync(unpacked, { recursive: true, force: true });
      rmSync(zip, { force: true });
    }
  }, 120_000);
});
