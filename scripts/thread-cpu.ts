// Where a bench run's CPU goes, by thread: this process's threads are sampled from /proc (Linux) while
// the run goes, since Node names none of them and a thread's figures vanish when it ends. Threads
// started during the run are the engine's; those there before are V8's helpers (garbage-collection
// marking) and libuv's pool. Also the main thread's full garbage collections (mark-compacts).
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

/** What /proc counts CPU time in on Linux (USER_HZ). */
const TICKS_PER_SECOND = 100;

/**
 * One buffer for every /proc read (a stat file is a few hundred bytes): sampling ~25 threads ten
 * times a second through readFileSync gave the measured run ~2 MB/s of buffers to collect.
 */
const STAT_BYTES = Buffer.allocUnsafeSlow(4096);

/** User + system CPU ticks in a /proc stat file (a process's or a thread's); throws where it is not there. */
function statTicks(file: string): number {
  const fd = openSync(file, 'r');
  let read: number;
  try {
    read = readSync(fd, STAT_BYTES, 0, STAT_BYTES.length, 0);
  } finally {
    closeSync(fd);
  }
  const stat = STAT_BYTES.toString('latin1', 0, read);
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** CPU-seconds (user + system, all threads) another process has used so far; null where /proc cannot tell. */
export function processCpuSeconds(pid: number): number | null {
  try {
    return statTicks(`/proc/${pid}/stat`) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** CPU ticks (user + system) of each of this process's threads now; empty where /proc is not there. */
function ticksByThread(): Map<number, number> {
  const ticks = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return ticks;
  }
  for (const tid of tids) {
    try {
      ticks.set(Number(tid), statTicks(`/proc/self/task/${tid}/stat`));
    } catch {
      // The thread ended between the listing and the read: its last sample stands.
    }
  }
  return ticks;
}

export interface ThreadCpu {
  /** CPU-seconds of the main thread, the engine threads, and everything else (V8's helpers, libuv's pool). */
  cpuSeconds: { main: number; engine: number; helpers: number };
  mainMarkCompacts: number;
}

/** Starts sampling; call the function it returns once the run is over. */
export function watchThreadCpu(): () => ThreadCpu {
  const before = ticksByThread();
  const last = new Map(before);
  const sample = () => {
    for (const [tid, t] of ticksByThread()) last.set(tid, t);
  };
  const timer = setInterval(sample, 100);
  let markCompacts = 0;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)
        markCompacts++;
  });
  gc.observe({ entryTypes: ['gc'] });
  return () => {
    sample();
    clearInterval(timer);
    gc.disconnect();
    const cpu = { main: 0, engine: 0, helpers: 0 };
    for (const [tid, t] of last) {
      const used = (t - (before.get(tid) ?? 0)) / TICKS_PER_SECOND;
      if (tid === process.pid) cpu.main += used;
      else if (before.has(tid)) cpu.helpers += used;
      else cpu.engine += used;
    }
    const round = (s: number) => Number(s.toFixed(2));
    return {
      cpuSeconds: { main: round(cpu.main), engine: round(cpu.engine), helpers: round(cpu.helpers) },
      mainMarkCompacts: markCompacts,
    };
  };
}
