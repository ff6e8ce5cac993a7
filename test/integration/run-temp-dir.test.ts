import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRunTempDir } from '../../shared/engine/spill/run-temp-dir';

/** A folder as an earlier attempt would have left it. */
function leftBehind(root: string, name: string, owner?: { pid: number; started: number }): string {
  const dir = path.join(root, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'bucket-0.rows'), 'spilled rows\n');
  if (owner) writeFileSync(path.join(dir, 'owner.json'), JSON.stringify(owner));
  return dir;
}

describe('run temp folders', () => {
  it('removes what attempts killed mid-run left behind, and nothing of attempts still running', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'run-temp-test-'));
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid!; // a process that has ended
    const killed = leftBehind(root, 'ci-braze-run-killed', { pid: deadPid, started: Date.now() - 60_000 });
    const running = leftBehind(root, 'ci-braze-run-running', { pid: process.pid, started: Date.now() - 60_000 });
    const beingMade = leftBehind(root, 'ci-braze-run-new'); // no owner file yet
    const ancient = leftBehind(root, 'ci-braze-run-ancient');
    const twoDaysAgo = new Date(Date.now() - 48 * 3600_000);
    utimesSync(ancient, twoDaysAgo, twoDaysAgo);
    const unrelated = leftBehind(root, 'something-else', { pid: deadPid, started: 0 });

    const dir = createRunTempDir(root);

    expect(existsSync(killed)).toBe(false);
    expect(existsSync(ancient)).toBe(false);
    expect(existsSync(running)).toBe(true);
    expect(existsSync(beingMade)).toBe(true);
    expect(existsSync(unrelated)).toBe(true);
    expect(path.basename(dir)).toMatch(/^ci-braze-run-/);
    expect(JSON.parse(readFileSync(path.join(dir, 'owner.json'), 'utf8')).pid).toBe(process.pid);
    expect(readdirSync(root).sort()).toEqual(
      ['ci-braze-run-new', 'ci-braze-run-running', path.basename(dir), 'something-else'].sort(),
    );
    rmSync(root, { recursive: true, force: true });
  });
});
