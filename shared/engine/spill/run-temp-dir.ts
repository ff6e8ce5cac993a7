// The engine's temp folder for one attempt of a run (spilled rows, records of what was sent
// early), removed when the attempt ends. A process killed mid-run cannot remove its own, and at
// 10 M profiles one holds about 2 GB: so each attempt first removes the folders whose process is
// gone, on the same machine, before making its own.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const PREFIX = 'ci-braze-run-';
const OWNER_FILE = 'owner.json';
/** Older than any attempt can be (the worker's time budget is at most a day): abandoned whoever made it. */
const MAX_AGE_MS = 25 * 60 * 60 * 1000;

export function createRunTempDir(root: string): string {
  removeAbandoned(root);
  const dir = mkdtempSync(path.join(root, PREFIX));
  writeFileSync(path.join(dir, OWNER_FILE), JSON.stringify({ pid: process.pid, started: Date.now() }));
  return dir;
}

/** Room kept free beside the spill (the host, logs, the early-send records). */
export const SPILL_HEADROOM_BYTES = 64 * 1024 * 1024;

/**
 * Why a snapshot's spill cannot fit in `root`, or null when it can. The estimate is the snapshot's
 * CSV size: a spill line is a row cut down to the mapped columns plus its segment and key, about the
 * row's own size when most columns are mapped. Asked before anything is read, so such a run fails at
 * once with this message instead of with ENOSPC part-way. (On Flex Consumption an instance has about
 * 0.8 GB of temporary storage whatever its memory size: docs/deploy.md, "Platform limits".)
 */
export function spillWontFit(root: string, snapshotBytes: number, free = freeBytes(root)): string | null {
  if (free === null || snapshotBytes + SPILL_HEADROOM_BYTES <= free) return null;
  const gb = (n: number) => `${(n / 1024 ** 3).toFixed(2)} GB`;
  return (
    `This snapshot is ${gb(snapshotBytes)} of CSV and a run spills about that much to the instance's temporary folder, ` +
    `which has ${gb(free)} free: the run would stop part-way with a full disk. Export fewer segments or columns per export ` +
    `(split it in two), or run the app on a plan with more temporary storage (see "Platform limits" in docs/deploy.md)`
  );
}

/** Bytes free on the disk that holds `root`; null when that cannot be told. */
export function freeBytes(root: string): number | null {
  try {
    const s = statfsSync(root);
    return s.bavail * s.bsize;
  } catch {
    return null; // cannot tell: let the run try
  }
}

function removeAbandoned(root: string): void {
  for (const name of readdirSync(root)) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = path.join(root, name);
    try {
      if (!abandoned(dir)) continue;
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Gone meanwhile, or not ours to remove: not this attempt's business.
    }
  }
}

function abandoned(dir: string): boolean {
  let owner: { pid: number; started: number };
  try {
    owner = JSON.parse(readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as { pid: number; started: number };
  } catch {
    // No owner yet (being made right now) or unreadable: only age can tell.
    return Date.now() - statSync(dir).mtimeMs > MAX_AGE_MS;
  }
  return !processAlive(owner.pid) || Date.now() - owner.started > MAX_AGE_MS;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, but is someone else's
  }
}
