// Engine threads kept for the next run in this process. Starting one costs about a tenth of a
// CPU-second (a Node worker's bootstrap and the engine's modules): nothing beside a million-profile
// run, but most of the work of a small one, and an instance runs many. A thread comes back only from
// a run that ended cleanly; it drops that run's state first (its messages are handled in order, so
// before the next run's), and is let go once unused for a few seconds. Its shared-memory rings come
// back with it when nothing in them is still in use (10 MB to allocate and zero: ~3 ms a run).
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { EngineRings } from '../thread/protocol';

/** How long an idle thread is kept, and how many of one kind. */
const IDLE_MS = 10_000;
const MAX_IDLE = 2;

/** A thread's heap limits: threads are kept and handed out by them. */
export type ThreadLimits = Required<Pick<ResourceLimits, 'maxOldGenerationSizeMb' | 'maxYoungGenerationSizeMb'>>;

/** A thread and the rings it used last (null: none to reuse). */
export interface PooledThread {
  worker: Worker;
  rings: EngineRings | null;
}

const idle = new Map<string, (PooledThread & { drop: () => void })[]>();
const kindOf = (file: string, limits: ThreadLimits) =>
  `${file}|${limits.maxOldGenerationSizeMb}|${limits.maxYoungGenerationSizeMb}`;

/** An idle thread of this kind, or a new one. */
export function takeThread(file: string, limits: ThreadLimits): PooledThread {
  const kept = idle.get(kindOf(file, limits))?.pop();
  if (!kept) return { worker: new Worker(file, { resourceLimits: limits }), rings: null };
  kept.drop();
  kept.worker.ref();
  return { worker: kept.worker, rings: kept.rings };
}

/**
 * Keeps a thread whose run ended cleanly for the next run (`reset`: the message that makes it drop
 * the run's state); the caller has removed its own listeners.
 */
export function giveBack({ worker, rings }: PooledThread, file: string, limits: ThreadLimits, reset: unknown): void {
  const kind = kindOf(file, limits);
  const kept = idle.get(kind) ?? [];
  if (kept.length >= MAX_IDLE) {
    void worker.terminate();
    return;
  }
  worker.postMessage(reset);
  const letGo = setTimeout(() => {
    drop();
    void worker.terminate();
  }, IDLE_MS).unref();
  /** Out of the pool: handed out, let go, or gone (a thread that fails or stops while idle is not handed out again). */
  const drop = () => {
    clearTimeout(letGo);
    worker.off('exit', drop);
    worker.off('error', drop);
    const i = kept.indexOf(entry);
    if (i >= 0) kept.splice(i, 1);
  };
  const entry = { worker, rings, drop };
  worker.on('exit', drop);
  worker.on('error', drop);
  worker.unref();
  kept.push(entry);
  idle.set(kind, kept);
}
