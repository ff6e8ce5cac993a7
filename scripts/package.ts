// `npm run package`: a deployable zip of the app — host.json and package.json at the root, the
// compiled functions and core (dist/functions, dist/shared), the bundled console (dist/console), production dependencies only. No
// tests, scripts, sources or local settings. Zip deploy it, or give its URL to the template.
import { execFileSync } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ZipFile } from 'yazl';
import { appRoot } from '../shared/app-root';

const ROOT = appRoot;

function* filesUnder(dir: string, base = dir): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* filesUnder(full, base);
    else if (entry.isFile()) yield path.relative(base, full);
  }
}

/**
 * What a dependency ships that Node never loads on Azure: source maps, type declarations, and the
 * builds its package.json offers only under the `browser` and `react-native` conditions (the
 * Azure SDK's dist/browser and dist/react-native). Half of node_modules' bytes; a smaller zip
 * deploys and starts faster. The package test loads the app from the zip to prove nothing needed went.
 */
const NOT_LOADED_BY_NODE = /(\.map|\.d\.[cm]?ts)$|\/dist\/(browser|react-native)\//;

/**
 * The zip's name: what Flex Consumption calls the package it keeps in its deployment container
 * (one deploy and zip deploy store `released-package.zip`), so a release asset, a SAS URL for the
 * template's packageUri and `az functionapp deployment source config-zip --src` all use one name.
 */
export const PACKAGE_NAME = 'released-package.zip';

/**
 * The Node.js major version Azure runs the app on (the template's functionAppConfig.runtime.version).
 * The deployed package.json says so in `engines`; the repository's own says ">=20", because the code
 * (and its tests) also run on Node 20.
 */
export const AZURE_NODE_MAJOR = 22;

/**
 * The production dependencies as installed (`npm ci`): the folders `npm ls --omit=dev` lists, each
 * with what it holds but its own node_modules (a nested dependency is listed by itself when it is a
 * production one). The zip holds the versions the tests ran against, and packaging needs no registry.
 */
function productionFiles(): string[] {
  const windows = process.platform === 'win32';
  let listed: string;
  try {
    // On Windows npm is npm.cmd, which Node runs only through a shell.
    listed = execFileSync(windows ? 'npm.cmd' : 'npm', ['ls', '--omit=dev', '--all', '--parseable'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      shell: windows,
    });
  } catch {
    throw new Error('node_modules does not match package-lock.json: run `npm ci` first');
  }
  const files: string[] = [];
  for (const dir of listed.split(/\r?\n/).filter((d) => d && path.resolve(d) !== ROOT)) {
    for (const rel of filesUnder(dir, ROOT)) {
      const posix = rel.split(path.sep).join('/');
      const inner = posix.slice(path.relative(ROOT, dir).split(path.sep).join('/').length);
      if (!inner.startsWith('/node_modules/') && !NOT_LOADED_BY_NODE.test(posix)) files.push(rel);
    }
  }
  return files;
}

export async function buildPackage(out = path.join(ROOT, PACKAGE_NAME)): Promise<string> {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  // The deployed package.json: what the host needs, nothing to build or test with.
  const deployed = {
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    main: pkg.main,
    engines: { node: `>=${AZURE_NODE_MAJOR}` },
    dependencies: pkg.dependencies,
  };
  const zip = new ZipFile();
  // host.json and package.json first: deployment tools and people look there.
  zip.addFile(path.join(ROOT, 'host.json'), 'host.json');
  zip.addBuffer(Buffer.from(`${JSON.stringify(deployed, null, 2)}\n`), 'package.json');
  const compiled = ['functions', 'shared', 'console'].flatMap((dir) =>
    [...filesUnder(path.join(ROOT, 'dist', dir), ROOT)].filter((rel) => !rel.endsWith('.map')),
  );
  for (const rel of [...compiled, ...productionFiles()]) {
    const full = path.join(ROOT, rel);
    zip.addFile(full, rel.split(path.sep).join('/'), { mode: statSync(full).mode });
  }
  zip.end();
  await new Promise<void>((resolve, reject) => {
    zip.outputStream.pipe(createWriteStream(out)).on('close', resolve).on('error', reject);
  });
  return out;
}

if (require.main === module) {
  buildPackage(process.argv[2] ? path.resolve(process.argv[2]) : undefined).then(
    (out) => console.log(`Package written: ${out}`),
    (e) => {
      console.error(`Packaging failed: ${(e as Error).message}`);
      process.exit(1);
    },
  );
}
