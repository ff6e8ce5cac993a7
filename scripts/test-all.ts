// `npm test` after the build: three vitest runs at once, since vitest runs one project's files after
// another's. The unit and integration files in one, the end-to-end files (browsers and local hosts)
// in another, both at the lowest CPU priority; and at normal priority the files whose bounds are
// windows of wall time that a busy machine stretches (`npm run test:resume`): the resume of a first
// run killed while sending during reading (its checkpoints are time-based) and the time boxes. The
// scheduler gives those what they ask for, and the rest of the machine to the others, so they need
// not wait for a quiet machine. Each run's output is printed whole when it ends, so they do not
// interleave. The exit code is non-zero if any run failed.
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { appRoot } from '../shared/app-root';
import { timeFixedLoop } from './fixed-loop';

const VITEST = path.join(appRoot, 'node_modules', 'vitest', 'vitest.mjs');
/** The time-bound files: as globs to leave them out of the others, and as vitest's path filters. */
const TIME_BOUND = ['**/engine.resume-early.test.ts', '**/engine.timebox*.test.ts'];
const TIME_BOUND_FILTERS = ['test/e2e/engine.resume-early', 'test/e2e/engine.timebox'];
const LOWEST_PRIORITY = 19;

function vitest(label: string, args: string[], lowPriority: boolean): Promise<number> {
  const started = Date.now();
  const child = spawn(process.execPath, [VITEST, 'run', ...args], {
    cwd: appRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FORCE_COLOR: process.stdout.isTTY ? '1' : '0' },
  });
  // Set before vitest has started anything: its workers, Azurite, hosts and browsers inherit it.
  if (lowPriority && child.pid) os.setPriority(child.pid, LOWEST_PRIORITY);
  const output: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => output.push(b));
  child.stderr.on('data', (b: Buffer) => output.push(b));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      process.stdout.write(Buffer.concat(output));
      console.log(`— ${label}: ${code === 0 ? 'passed' : 'FAILED'} in ${Math.round((Date.now() - started) / 1000)} s`);
      resolve(code ?? 1);
    });
  });
}

async function main(): Promise<void> {
  console.log(`Machine speed before the runs: a fixed loop took ${Math.round(timeFixedLoop())} ms.`);
  const excluded = TIME_BOUND.flatMap((glob) => ['--exclude', glob]);
  console.log('Running the unit + integration, end-to-end and time-bound files at once (output follows as each ends)…');
  const codes = await Promise.all([
    vitest('time-bound: resume while sending during reading, time boxes', ['--project', 'e2e', ...TIME_BOUND_FILTERS], false),
    vitest('unit + integration', ['--project', 'unit', '--project', 'integration'], true),
    vitest('end to end', ['--project', 'e2e', ...excluded], true),
  ]);
  // The suite's time depends on the machine's speed, which drifts: say what it was.
  console.log(
    `Machine speed after the runs: a fixed loop took ${Math.round(timeFixedLoop())} ms (36–39 ms on the team's 2-core machine when it is quiet).`,
  );
  process.exit(codes.some((code) => code !== 0) ? 1 : 0);
}

void main();
