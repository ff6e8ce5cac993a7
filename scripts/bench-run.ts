// One export run in its own process, for the benchmark: queue it, execute it as the queue worker
// would (continuations included), print the outcome with this process's peak RSS. With
// `--preview`, the export's dry run instead (POST …/preview), with its time and peak RSS.
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { resetServices, services } from '../shared/services';
import { timeFixedLoop } from './fixed-loop';
import { watchThreadCpu } from './thread-cpu';

/**
 * This process's peak resident memory in MB. Linux: the memory's own high-water mark (VmHWM), as
 * getrusage's maxRSS carries the high-water mark of the process image before exec: the bench's
 * own, when it is larger (it holds each partition whole while uploading it).
 */
function peakRssMB(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'latin1'));
    if (hwm) return Number(hwm[1]) / 1024;
  } catch {
    // Not Linux: getrusage's figure.
  }
  return process.resourceUsage().maxRSS / 1024;
}

/** User + system CPU of this process since `from`, all its threads (the engine threads included). */
const cpuSecondsSince = (from: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1e6;
};

async function main(): Promise<void> {
  const exportId = process.argv[2]!;
  const app = services();
  await app.ready;
  const loopMs = timeFixedLoop();
  const cpuFrom = process.cpuUsage();
  const started = Date.now();
  if (process.argv.includes('--verify')) return verify(exportId, cpuFrom, loopMs);
  if (process.argv.includes('--preview')) {
    const preview = await app.preview.preview({ role: 'Admin', name: 'bench' }, exportId, false);
    const wallSeconds = (Date.now() - started) / 1000;
    console.log(
      JSON.stringify({
        preview,
        wallSeconds,
        cpuSeconds: cpuSecondsSince(cpuFrom),
        loopMs,
        peakRssMB: peakRssMB(),
      }),
    );
    return;
  }
  const threads = watchThreadCpu();
  const outcome = await app.runs.runNow({ role: 'Admin', name: 'bench' }, exportId, false);
  // A run that is already going was left by a killed process (bench --kill-at): resume it.
  let run = 'queued' in outcome ? outcome.queued : outcome.active;
  await app.storage.runQueue.clearMessages();
  while (run.status === 'queued' || run.status === 'running') {
    await app.worker.execute(run.id, (line) => process.stderr.write(`${line}\n`));
    const next = await app.runs.get(run.id);
    // The killed worker's lease runs out within seconds: until then the worker only re-queues.
    if (next.attempts === run.attempts && next.status === run.status) await new Promise((r) => setTimeout(r, 1000));
    run = next;
  }
  // The run ends when its record says so (what the API and the console show); the worker may keep
  // the rate limit a little longer, until its last burst has left Braze's window.
  const finishedAtMs = run.finishedAt ? Date.parse(run.finishedAt) : Date.now();
  console.log(
    JSON.stringify({
      status: run.status,
      counts: run.counts,
      requests: run.requests,
      attempts: run.attempts,
      timings: run.timings,
      wallSeconds: (finishedAtMs - started) / 1000,
      finishedAtMs,
      handOverSeconds: (Date.now() - finishedAtMs) / 1000,
      cpuSeconds: cpuSecondsSince(cpuFrom),
      threads: threads(),
      loopMs,
      peakRssMB: peakRssMB(),
    }),
  );
}

/** A verification of the export (bench --verify [--sample N]), polled at once: Braze's own export time is not what is measured. */
async function verify(exportId: string, cpuFrom: NodeJS.CpuUsage, loopMs: number): Promise<void> {
  resetServices({ verifyTiming: { pollMs: 100 } });
  const app = services();
  await app.ready;
  const started = Date.now();
  // The longest the event loop went without a turn (the export's lease is renewed every 2 s, lost after 15 s).
  const blocked = monitorEventLoopDelay({ resolution: 20 });
  blocked.enable();
  const sample = process.argv.includes('--sample') ? Number(process.argv[process.argv.indexOf('--sample') + 1]) : undefined;
  const outcome = await app.verify.verifyNow({ role: 'Admin', name: 'bench' }, exportId, sample);
  if (!('queued' in outcome)) throw new Error('a run of the export is going');
  await app.storage.runQueue.clearMessages();
  let run = outcome.queued;
  while (run.status === 'queued' || run.status === 'running') {
    await app.worker.execute(run.id, (line) => process.stderr.write(`${line}\n`));
    run = await app.runs.get(run.id);
  }
  console.log(
    JSON.stringify({
      status: run.status,
      errors: run.errors,
      verify: {
        counts: run.verify?.counts,
        timings: run.verify?.timings,
        confidence: run.verify?.confidence,
        sentValues: run.verify?.sentValues,
      },
      longestBlockMs: Math.round(blocked.max / 1e6),
      wallSeconds: (Date.now() - started) / 1000,
      cpuSeconds: cpuSecondsSince(cpuFrom),
      loopMs,
      peakRssMB: peakRssMB(),
    }),
  );
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error((e as Error).stack);
    process.exit(1);
  },
);
