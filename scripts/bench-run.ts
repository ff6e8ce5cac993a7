// One export run in its own process, for the benchmark: queue it, execute it as the queue worker
// would (continuations included), print the outcome with this process's peak RSS.
import { services } from '../shared/services';

async function main(): Promise<void> {
  const exportId = process.argv[2]!;
  const app = services();
  await app.ready;
  const started = Date.now();
  const outcome = await app.runs.runNow({ role: 'Admin', name: 'bench' }, exportId, false);
  if (!('queued' in outcome)) throw new Error('a run is already active');
  await app.storage.runQueue.clearMessages();
  let run = outcome.queued;
  while (run.status === 'queued' || run.status === 'running') {
    await app.worker.execute(run.id, (line) => process.stderr.write(`${line}\n`));
    run = await app.runs.get(run.id);
  }
  const wallSeconds = (Date.now() - started) / 1000;
  console.log(
    JSON.stringify({
      status: run.status,
      counts: run.counts,
      requests: run.requests,
      attempts: run.attempts,
      timings: run.timings,
      wallSeconds,
      peakRssMB: process.resourceUsage().maxRSS / 1024,
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
