// `npm test` after the build: the end-to-end files (browsers and local hosts, mostly waiting) and
// one integration file (BESIDE_E2E) in one vitest run beside the unit and other integration files in
// another, since vitest runs one project's files after another's; then the files whose bounds are
// wall-time windows that a busy machine stretches, on their own (`npm run test:resume`): the resume
// of a first run killed while sending during reading (its checkpoints are time-based) and the time
// boxes. The bucket-phase kill-and-resume file runs with the end-to-end files: its bound is in
// checkpointed buckets, and it mostly waits out a lease. Each run's output is printed whole when it
// ends, so the two do not interleave. The exit code is non-zero if any run failed.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { appRoot } from '../shared/app-root';
import { timeFixedLoop } from './fixed-loop';

const VITEST = path.join(appRoot, 'node_modules', 'vitest', 'vitest.mjs');
/** The files the last phase runs alone: as globs to leave them out, and as vitest's path filters. */
const ALONE = ['**/engine.resume-early.test.ts', '**/engine.timebox*.test.ts'];
const ALONE_FILTERS = ['test/e2e/engine.resume-early', 'test/e2e/engine.timebox'];
/**
 * An integration file that runs in the end-to-end files' run instead, so the two runs end about
 * together (the unit and integration files take longer): mostly sleeping, the comparisons it
 * stops being slowed on purpose.
 */
const BESIDE_E2E = 'verify-stop';

function vitest(label: string, args: string[], buffered: boolean): Promise<number> {
  const started = Date.now();
  const child = spawn(process.execPath, [VITEST, 'run', ...args], {
    cwd: appRoot,
    stdio: buffered ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    env: buffered ? { ...process.env, FORCE_COLOR: process.stdout.isTTY ? '1' : '0' } : process.env,
  });
  const output: Buffer[] = [];
  child.stdout?.on('data', (b: Buffer) => output.push(b));
  child.stderr?.on('data', (b: Buffer) => output.push(b));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (buffered) process.stdout.write(Buffer.concat(output));
      console.log(`— ${label}: ${code === 0 ? 'passed' : 'FAILED'} in ${Math.round((Date.now() - started) / 1000)} s`);
      resolve(code ?? 1);
    });
  });
}

/** The suite's time depends on the machine's speed, which drifts: it is said before and after. */
const machineSpeed = (when: string) =>
  console.log(
    `Machine speed ${when}: a fixed loop took ${Math.round(timeFixedLoop())} ms (36–39 ms on the team's 2-core machine when it is quiet).`,
  );

async function main(): Promise<void> {
  machineSpeed('before the runs');
  const excluded = ALONE.flatMap((glob) => ['--exclude', glob]);
  console.log('Running the end-to-end files beside the unit and integration files (output follows as each ends)…');
  const together = await Promise.all([
    vitest(
      'unit + integration',
      ['--project', 'unit', '--project', 'integration', '--exclude', `**/${BESIDE_E2E}.test.ts`],
      true,
    ),
    vitest(
      'end to end',
      ['--project', 'e2e', '--project', 'integration', 'test/e2e/', `test/integration/${BESIDE_E2E}.test`, ...excluded],
      true,
    ),
  ]);
  const alone = await vitest(
    'time-bound: resume while sending during reading, time boxes',
    ['--project', 'e2e', ...ALONE_FILTERS],
    false,
  );
  machineSpeed('after the runs');
  process.exit([...together, alone].some((code) => code !== 0) ? 1 : 0);
}

void main();
