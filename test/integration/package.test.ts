// npm run package: a zip that deploys as is, with nothing that should not ship.
import os from 'node:os';
import path from 'node:path';
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

describe('deployment package', () => {
  it('starts with host.json and package.json and holds only what runs in Azure', async () => {
    const zip = await buildPackage(path.join(os.tmpdir(), `ci-braze-test-${process.pid}.zip`));
    const names = await entries(zip);
    expect(names.slice(0, 2)).toEqual(['host.json', 'package.json']);
    expect(names).toContain('dist/functions/index.js');
    // The web console, bundled at build: its page and one hashed script and stylesheet.
    expect(names).toContain('dist/console/index.html');
    expect(names.filter((n) => /^dist\/console\/app\.[A-Z0-9]+\.js$/.test(n))).toHaveLength(1);
    for (const devOnly of ['esbuild', 'playwright-core', '@axe-core/playwright'])
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
  }, 120_000);
});
