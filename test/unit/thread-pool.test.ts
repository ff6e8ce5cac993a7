// Engine threads kept for the next run (shared/engine/run/thread-pool.ts), with a stand-in thread
// that answers each message of a run with its thread id and the messages it has had.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { giveBack, takeThread } from '../../shared/engine/run/thread-pool';
import { createRing } from '../../shared/engine/thread/shared-ring';

const file = path.join(mkdtempSync(path.join(tmpdir(), 'thread-pool-')), 'echo.js');
writeFileSync(
  file,
  `const { parentPort, threadId } = require('node:worker_threads');
   const seen = [];
   parentPort.on('message', (m) => { seen.push(m); if (m === 'exit') process.exit(0); if (m.startsWith('run')) parentPort.postMessage({ threadId, seen }); });`,
);
const limits = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 8 };
const started: Worker[] = [];

function take(l = limits): Worker {
  const { worker } = takeThread(file, l);
  started.push(worker);
  return worker;
}
const noRings = (worker: Worker) => ({ worker, rings: null });

const ask = (w: Worker, m: unknown) =>
  new Promise<{ threadId: number; seen: unknown[] }>((resolve) => {
    w.once('message', resolve);
    w.postMessage(m);
  });

afterAll(async () => {
  await Promise.all(started.map((w) => w.terminate()));
  rmSync(path.dirname(file), { recursive: true, force: true });
});

describe('engine threads kept for the next run', () => {
  it('a thread given back serves the next run, which it reaches only after the reset message, with the rings it had', async () => {
    const first = takeThread(file, limits);
    started.push(first.worker);
    expect(first.rings).toBeNull(); // a new thread: its run makes rings of its own
    const { threadId } = await ask(first.worker, 'run 1');
    const rings = { chunks: createRing(64), objects: createRing(64), state: createRing(64) };
    giveBack({ worker: first.worker, rings }, file, limits, 'reset');
    const again = takeThread(file, limits);
    expect(again.worker).toBe(first.worker);
    expect(again.rings).toBe(rings);
    expect(await ask(again.worker, 'run 2')).toEqual({ threadId, seen: ['run 1', 'reset', 'run 2'] });
  });

  it('a thread that stopped while idle is not handed out again', async () => {
    const w = take();
    await ask(w, 'run');
    giveBack(noRings(w), file, limits, 'exit');
    await new Promise((resolve) => w.once('exit', resolve));
    expect(take()).not.toBe(w);
  });

  it('keeps two of a kind at most, and never hands out a thread of other limits', async () => {
    const threads = [take(), take(), take()];
    const stopped = new Promise((resolve) => threads[2]!.once('exit', resolve));
    for (const w of threads) giveBack(noRings(w), file, limits, 'reset');
    await stopped; // the third was let go
    const other = take({ ...limits, maxOldGenerationSizeMb: 96 });
    expect(threads).not.toContain(other);
    expect(threads.slice(0, 2)).toContain(take());
    expect(threads.slice(0, 2)).toContain(take());
  });
});
