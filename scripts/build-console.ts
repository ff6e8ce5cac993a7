// Part of `npm run build`: bundles the web console (console/) into dist/console — one minified
// script and one stylesheet, named by content hash, and the page that loads them. Nothing comes
// from a CDN; the app serves these files itself (shared/console/assets.ts).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { appRoot } from '../shared/app-root';

const SOURCE = path.join(appRoot, 'console');
const OUT = path.join(appRoot, 'dist', 'console');

export async function buildConsole(): Promise<{ script: string; scriptGzipBytes: number }> {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const result = await build({
    entryPoints: { app: path.join(SOURCE, 'src', 'main.ts'), styles: path.join(SOURCE, 'styles.css') },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome120', 'firefox120', 'safari17'],
    entryNames: '[name].[hash]',
    outdir: OUT,
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((f) => path.basename(f));
  const script = outputs.find((f) => f.startsWith('app.') && f.endsWith('.js'))!;
  const styles = outputs.find((f) => f.startsWith('styles.') && f.endsWith('.css'))!;
  const page = readFileSync(path.join(SOURCE, 'index.html'), 'utf8')
    .replace('{{script}}', `/console/${script}`)
    .replace('{{styles}}', `/console/${styles}`);
  writeFileSync(path.join(OUT, 'index.html'), page);
  return { script, scriptGzipBytes: gzipSync(readFileSync(path.join(OUT, script))).length };
}

if (require.main === module) {
  buildConsole().then(
    ({ script, scriptGzipBytes }) =>
      console.log(`console: dist/console/${script} (${(scriptGzipBytes / 1024).toFixed(1)} KB gzip)`),
    (error) => {
      console.error(`console build failed: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
