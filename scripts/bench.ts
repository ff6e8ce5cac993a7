// `npm run bench -- --profiles N [--repeat R] [--segments K] [--overlap nested|random] [--p P] [--wide] [--change-percent P] [--preview] [--cpus N] [--budget B] [--braze-latency-ms L] [--tls] [--storage-tls] [--no-guard] [--first-only] [--verify [--sample K] [--unexportable]]`
// Generates a CI-layout snapshot of N profiles into Azurite, then runs the export three times
// against the Braze sandbox (enforcing 3,000 requests / 3 s, the connection's budget set to that
// full limit unless --budget says less): first run, same snapshot again, then after changing P % of
// the profiles. Each run happens in its own process (scripts/bench-run.ts) so its peak RSS is the
// export's alone. Prints one JSON line per run (and, with --preview, one per dry run before the
// first and the changed run).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite } from './azurite';
import { benchVerify } from './bench-verify';
import { summarize, type BenchLine } from './bench-summary';
import { processCpuSeconds, type ThreadCpu } from './thread-cpu';
import { appRoot } from '../shared/app-root';
import { MAX_OBJECTS_PER_REQUEST } from '../shared/braze/batch';
import { GUARD_OFF } from '../shared/exports/schema';
import { LOCALHOST_CERT } from './localhost-tls';

const ROOT = appRoot;
const CONTAINER = 'bench';
const FOLDER = 'CustomerInsights_bench/BrazeExport';
const COLUMNS = ['CustomerId', 'BrazeUserId', 'PrimaryEmail', 'FirstName', 'LastName', 'LifetimeValue'];

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function arg(name: string, fallback?: number): number {
  const given = flag(name);
  const v = given !== undefined ? Number(given) : fallback;
  if (v === undefined || !Number.isFinite(v)) throw new Error(`--${name} <number> is required`);
  return v;
}

/**
 * `--cpus N`: each run's process is pinned to cores 0..N-1 (taskset), and Azurite and the sandbox to
 * the other cores where there are any, as a customer's instance of N vCPUs runs the app alone.
 */
const CPUS = flag('cpus') !== undefined ? arg('cpus') : null;
if (CPUS !== null) {
  if (!Number.isInteger(CPUS) || CPUS < 1 || CPUS > os.availableParallelism())
    throw new Error(`--cpus must be a whole number from 1 to ${os.availableParallelism()}`);
  if (spawnSync('taskset', ['--version']).status !== 0) throw new Error('--cpus needs taskset (Debian: util-linux)');
}

/** The command that runs `args` on the export's cores. */
const onRunCores = (args: string[]): [string, string[]] =>
  CPUS === null ? [process.execPath, args] : ['taskset', ['-c', `0-${CPUS - 1}`, process.execPath, ...args]];

/** Moves a helper process (Azurite, the sandbox) and all its threads off the export's cores, where there are others. */
function offRunCores(pid: number): void {
  const cores = os.availableParallelism();
  if (CPUS === null || CPUS >= cores) return;
  spawnSync('taskset', ['-a', '-cp', `${CPUS}-${cores - 1}`, String(pid)], { stdio: 'ignore' });
}

/** `--budget B`: the connection's requests per 3 s (default 3,000, Braze's whole default limit; the app's own default is 1,000). */
const BUDGET = arg('budget', 3000);
if (!Number.isInteger(BUDGET) || BUDGET < 1 || BUDGET > 3000) throw new Error('--budget must be a whole number from 1 to 3000');

/**
 * `--braze-latency-ms L`: the sandbox answers each /users/track request L ms after it arrives
 * (default 0: loopback). Braze is an internet service: a request's round trip there is tens to
 * hundreds of ms, so what a run keeps in flight, not the budget, can set its pace.
 */
const BRAZE_LATENCY_MS = arg('braze-latency-ms', 0);
if (BRAZE_LATENCY_MS < 0 || BRAZE_LATENCY_MS > 10_000) throw new Error('--braze-latency-ms must be from 0 to 10000');

/**
 * `--tls`: the sandbox serves https (at https://localhost:<port>, with the loopback certificate the
 * bench's processes trust through NODE_EXTRA_CA_CERTS), as Braze does: the app's TLS work (each
 * request encrypted, each answer decrypted) is then in its CPU figures, and the sandbox's in its.
 */
const TLS = process.argv.includes('--tls');

/**
 * `--storage-tls`: Azurite serves https too (at https://localhost:<port>, the same certificate), as
 * Azure Storage does: the partitions, the sync state and the run's table rows are then encrypted
 * and decrypted, in the app's CPU and in Azurite's.
 */
const STORAGE_TLS = process.argv.includes('--storage-tls');

/** `--partition-rows N`: rows per CSV partition (CI writes partitions of ~100 k–250 k rows). */
const ROWS_PER_PARTITION = arg('partition-rows', 250_000);
if (ROWS_PER_PARTITION < 1) throw new Error('--partition-rows must be at least 1');

/**
 * The segment shape. `nested` (default): everyone is in segment 0, each other segment holds ~30 %
 * (about half the profiles sit in one segment only). `random`: each profile is in each of the K
 * segments with probability p (`--p`, default 0.5), and in at least one — segments that overlap
 * at random, as "High value", "Churn risk" and "Newsletter" do. Deterministic either way.
 */
const OVERLAP = flag('overlap') ?? 'nested';
if (OVERLAP !== 'nested' && OVERLAP !== 'random') throw new Error('--overlap is nested or random');
const P = arg('p', 0.5);
/** A profile's draw for a segment, 0–9999: murmur3's finalizer over both, so the segments' draws are independent. */
function draw(i: number, s: number): number {
  let h = Math.imul(i, 0x9e3779b1) ^ Math.imul(s + 1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) % 10_000;
}
const inSegment = (i: number, s: number, k: number): boolean => {
  if (OVERLAP === 'nested') return s === 0 || draw(i, s) % 10 < 3;
  if (draw(i, s) < P * 10_000) return true;
  // In no segment by the draws: the profile goes to one of them, chosen by its id.
  for (let t = 0; t < k; t++) if (draw(i, t) < P * 10_000) return false;
  return i % k === s;
};

/** `--wide`: long, non-Latin, quoted multi-line values, as real CI exports have. */
const WIDE = process.argv.includes('--wide');
const wideName = (i: number, base: string) => `"${base} Zoë-Łucja 李小龍 Ἀθηνᾶ ${i % 97}, ""the"" second
line: Ñandú Øster ${'ü'.repeat(i % 40)}"`;
const changed = (i: number, percent: number) => ((i * 40503) >>> 0) % 10_000 < percent * 100;

function* csvRows(n: number, segment: number, segments: number, version: number, changePercent: number): Generator<string> {
  let chunk: string[] = [];
  for (let i = 1; i <= n; i++) {
    if (!inSegment(i, segment, segments)) continue;
    const name = version > 0 && changed(i, changePercent) ? `Changed${version}_${i}` : `First${i}`;
    const last = `Last${i % 997}`;
    chunk.push(
      `c${i},${i % 4 ? `u${i}` : ''},user${i}@example.com,${WIDE ? wideName(i, name) : name},${WIDE ? wideName(i, last) : last},${(i % 5000) / 10}`,
    );
    if (chunk.length === 5000) {
      yield `${chunk.join('\n')}\n`;
      chunk = [];
    }
  }
  if (chunk.length) yield `${chunk.join('\n')}\n`;
}

async function writeSnapshot(blobs: BlobServiceClient, n: number, segments: number, version: number, changePercent: number) {
  const c = blobs.getContainerClient(CONTAINER);
  await c.createIfNotExists();
  const stamp = `2026/11/2${version}/0600`;
  const entities = [];
  for (let s = 0; s < segments; s++) {
    const segment = `Segment${s}`;
    const partitions = [];
    // Split the row stream into partitions of ROWS_PER_PARTITION lines.
    const gen = csvRows(n, s, segments, version, changePercent);
    let part = 0;
    let done = false;
    while (!done) {
      part++;
      let lines = 0;
      const name = `${FOLDER}/${segment}/${stamp}/${segment}_${part}.csv`;
      const pieces: Buffer[] = [];
      while (lines < ROWS_PER_PARTITION) {
        const next = gen.next();
        if (next.done) {
          done = true;
          break;
        }
        lines += 5000;
        pieces.push(Buffer.from(next.value));
      }
      // One Put Blob per partition, not blocks: Azurite serves a blob committed from blocks with
      // about twice the CPU (docs/performance.md), and it shares its core with the sandbox.
      const body = Buffer.concat(pieces);
      await c.getBlockBlobClient(name).upload(body, body.length);
      partitions.push({
        name: `${segment}_${part}`,
        location: `https://bench.blob.core.windows.net/${CONTAINER}/${name}`,
        fileFormatSettings: { $type: 'CsvFormatSettings', columnHeaders: false, delimiter: ',' },
      });
    }
    entities.push({
      $type: 'LocalEntity',
      name: segment,
      attributes: COLUMNS.map((name) => ({ name, dataType: name === 'LifetimeValue' ? 'decimal' : 'string' })),
      partitions,
    });
  }
  const model = JSON.stringify({ name: 'BrazeExport', version: '1.0', modifiedTime: new Date().toISOString(), entities });
  await c.getBlockBlobClient(`${FOLDER}/model.json`).upload(model, Buffer.byteLength(model));
}

function startSandboxProcess(): Promise<{
  url: string;
  pid: number;
  stop: () => void;
  stats: (busiestSince?: number) => Promise<{
    requests: number;
    byStatus: Record<string, number>;
    objectsProcessed: number;
    trackConnections: number;
    trackConnectionsAtOnce?: number;
    busiestWindow?: number;
    firstSecondsArrivals?: number[];
  }>;
}> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'scripts', 'braze-sandbox.js'), '0'], {
    // --verify reads the profiles back: the sandbox keeps them (scripts/bench-verify.ts).
    env: {
      ...process.env,
      BRAZE_SANDBOX_STORE: process.argv.includes('--verify') ? 'true' : 'false',
      BRAZE_SANDBOX_TLS: TLS ? 'true' : 'false',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  offRunCores(child.pid!);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (https?:\/\/(?:127\.0\.0\.1|localhost):\d+)/.exec(out);
      if (m) {
        const url = m[1]!;
        resolve({
          url,
          pid: child.pid!,
          stop: () => child.kill(),
          stats: async (busiestSince?: number) =>
            (await fetch(`${url}/sandbox/stats${busiestSince ? `?busiestSince=${busiestSince}` : ''}`)).json() as never,
        });
      }
    });
    child.on('exit', (code) => reject(new Error(`sandbox exited ${code}`)));
  });
}

interface RunOutput {
  status: string;
  counts: { profiles: number; sent: number; unchanged: number; removed: number; rejected: number; failed: number };
  requests: { sent: number; retried: number; rateLimited: number };
  wallSeconds: number;
  /** When the run's record says it ended (epoch ms). */
  finishedAtMs: number;
  /** From then until the worker let the rate limit go (RequestBudget.msUntilEven). */
  handOverSeconds: number;
  /** User + system CPU of the run's process, all threads. */
  cpuSeconds: number;
  /** The same by thread (Linux only), and the main thread's full garbage collections: scripts/thread-cpu.ts. */
  threads?: ThreadCpu;
  /** A fixed loop timed in the run's process just before the run: the noise of the machine at that moment. */
  loopMs: number;
  peakRssMB: number;
  attempts: number;
  timings?: { readingSeconds: number; sendingSeconds: number; firstRequestSeconds?: number | null };
}

/** The run processes going (a stopped bench stops them). */
const runsUnderWay = new Set<ChildProcess>();

/** `killWhen`: polled every 20 ms while the run goes; true = SIGKILL the run's process (resolves null). */
function runInChild(
  env: Record<string, string>,
  exportId: string,
  killWhen?: () => Promise<boolean>,
  extraArgs: string[] = [],
): Promise<RunOutput | null> {
  return new Promise((resolve, reject) => {
    // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each run there (open in Chrome DevTools).
    const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
    const child = spawn(
      ...onRunCores([
        ...prof,
        ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean),
        '--max-old-space-size=256',
        path.join(ROOT, 'dist', 'scripts', 'bench-run.js'),
        exportId,
        ...extraArgs,
      ]),
      {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    runsUnderWay.add(child);
    child.on('exit', () => runsUnderWay.delete(child));
    let out = '';
    let killed = false;
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    if (killWhen) {
      const poll = setInterval(() => {
        void killWhen().then((kill) => {
          if (kill && !killed) {
            killed = true;
            child.kill('SIGKILL');
          }
        });
      }, 20);
      child.on('exit', () => clearInterval(poll));
    }
    // 'close', not 'exit': by then all of its stdout has been read.
    child.on('close', (code) => {
      if (killed) return resolve(null);
      if (code !== 0) return reject(new Error(`bench run exited ${code}: ${out.slice(-2000)}`));
      // The run's result is its last line; what Node printed before it (BENCH_NODE_FLAGS=--trace-gc) goes to stderr.
      const lines = out.trim().split('\n');
      const line = lines.pop() ?? '';
      if (lines.length > 0) process.stderr.write(`${lines.join('\n')}\n`);
      resolve(JSON.parse(line) as RunOutput);
    });
  });
}

/** What a bench run works with: storage, the sandbox, the export under test and its settings. */
interface Bench {
  blobs: BlobServiceClient;
  sandbox: Awaited<ReturnType<typeof startSandboxProcess>>;
  env: Record<string, string>;
  exportId: string;
  profiles: number;
  killAt: number | null;
  /** The processes that share the machine with a run: their CPU during it is printed beside the run's. */
  beside: { sandbox: number; azurite: number };
}

/** CPU-seconds the sandbox and Azurite have used so far (each null where /proc cannot tell). */
const besideCpu = (b: Bench) => ({ sandbox: processCpuSeconds(b.beside.sandbox), azurite: processCpuSeconds(b.beside.azurite) });

/** CPU-seconds each used since `before` (null where either reading is missing). */
function besideCpuSince(b: Bench, before: ReturnType<typeof besideCpu>): Record<'sandbox' | 'azurite', number | null> {
  const now = besideCpu(b);
  const since = (a: number | null, z: number | null) => (a === null || z === null ? null : Number((a - z).toFixed(2)));
  return { sandbox: since(now.sandbox, before.sandbox), azurite: since(now.azurite, before.azurite) };
}

/**
 * `--no-guard`: the export's guard switched off, to measure the engine alone (by default each run of
 * an export that has sent before is weighed first by a dry run, as customers' runs are).
 */
const NO_GUARD = process.argv.includes('--no-guard');

/**
 * `--unexportable`: the export also maps `image_url` (from LastName), a standard field Braze's export
 * cannot return, so a verification settles every profile from the snapshot the export sent.
 */
const UNEXPORTABLE = process.argv.includes('--unexportable');

/** A Braze connection to the sandbox and an export of the generated segments, through the app's services. */
async function createExport(sandboxUrl: string, segments: number): Promise<string> {
  const { resetServices, services } = await import('../shared/services');
  resetServices(); // a batch's next bench has an Azurite of its own
  const app = services();
  await app.ready;
  const admin = { role: 'Admin' as const, name: 'bench' };
  const conn = await app.connections.create(admin, {
    displayName: 'Bench sandbox',
    restEndpoint: sandboxUrl,
    apiKey: 'sandbox-key',
    consent: true,
    requestBudget: BUDGET,
  });
  const exp = await app.exports.create(admin, {
    name: 'Bench',
    connectionId: conn.value.id,
    brazeSegmentApiId: 'bench-segments',
    source: { container: CONTAINER, folder: FOLDER },
    segments: Array.from({ length: segments }, (_, s) => `Segment${s}`),
    matching: {
      profileId: 'CustomerId',
      email: 'PrimaryEmail',
      brazeCustomerId: 'BrazeUserId',
      attributes: {
        first_name: 'FirstName',
        last_name: 'LastName',
        lifetime_value: 'LifetimeValue',
        ...(UNEXPORTABLE ? { image_url: 'LastName' } : {}),
      },
    },
    ...(NO_GUARD ? { guard: GUARD_OFF } : {}),
  });
  return exp.value.id;
}

/** The export's sync state in Blob Storage: fingerprints, identities and held-field bits per profile. */
async function stateMB(b: Bench): Promise<number> {
  let bytes = 0;
  for await (const blob of b.blobs.getContainerClient('sync-state').listBlobsFlat({ prefix: `${b.exportId}/` }))
    bytes += blob.properties.contentLength ?? 0;
  return Number((bytes / 2 ** 20).toFixed(1));
}

/** One run of the export in a process of its own (killed and resumed for the first run with --kill-at), printed as a JSON line. */
async function report(b: Bench, label: string): Promise<RunOutput> {
  let objectsResent: number | undefined;
  let r: RunOutput;
  const besideBefore = besideCpu(b);
  const connectionsBefore = (await b.sandbox.stats()).trackConnections;
  const runStarted = Date.now();
  if (label === 'first' && b.killAt !== null) {
    const started = Date.now();
    await runInChild(b.env, b.exportId, async () => (await b.sandbox.stats()).objectsProcessed >= b.killAt! * b.profiles);
    const beforeKill = (await b.sandbox.stats()).objectsProcessed;
    process.stderr.write(`killed the first run's worker after ${beforeKill} objects; resuming\n`);
    const resumed = (await runInChild(b.env, b.exportId))!;
    r = { ...resumed, wallSeconds: (resumed.finishedAtMs - started) / 1000 };
    // Every profile reached Braze once at least; anything beyond was sent again.
    objectsResent = (await b.sandbox.stats()).objectsProcessed - b.profiles;
  } else r = (await runInChild(b.env, b.exportId))!;
  const toSend = r.counts.sent + r.counts.failed + r.counts.removed;
  // Requests at the budget's pace: 1,000 a second at the whole limit.
  const floor = Math.ceil(toSend / MAX_OBJECTS_PER_REQUEST) / (BUDGET / 3);
  const sandboxRun = await b.sandbox.stats(runStarted);
  const line = {
    run: label,
    status: r.status,
    profiles: r.counts.profiles,
    changed: toSend,
    requests: r.requests.sent,
    rateLimited: r.requests.rateLimited,
    // Connections to Braze the run opened (with --tls, each a handshake).
    brazeConnections: (await b.sandbox.stats()).trackConnections - connectionsBefore,
    // The most of them open at once: each kept-alive connection holds buffers (over TLS ~100–150 KB).
    brazeConnectionsAtOnce: sandboxRun.trackConnectionsAtOnce ?? 0,
    // The most requests Braze got in any 3 s window of the run: at most the budget (`--budget`, 3,000 by default).
    busiestWindow: sandboxRun.busiestWindow ?? 0,
    // Those it got in each 0.5 s of the first 3 s from the run's first request: how fast sending started.
    firstSecondsArrivals: sandboxRun.firstSecondsArrivals ?? [],
    wallSeconds: Number(r.wallSeconds.toFixed(2)),
    handOverSeconds: Number(r.handOverSeconds.toFixed(2)),
    floorSeconds: floor,
    ratioToFloor: floor > 0 ? Number((r.wallSeconds / floor).toFixed(3)) : null,
    cpus: CPUS ?? os.availableParallelism(),
    cpuSeconds: Number(r.cpuSeconds.toFixed(2)),
    cpuSecondsPerMillion: Number(((r.cpuSeconds / b.profiles) * 1e6).toFixed(2)),
    ...(r.threads ? { threadCpuSeconds: r.threads.cpuSeconds, mainMarkCompacts: r.threads.mainMarkCompacts } : {}),
    // What the Braze sandbox and Azurite took meanwhile: on a machine whose cores they share with
    // the run (--cpus as many as it has), theirs is CPU the run did not get.
    besideCpuSeconds: besideCpuSince(b, besideBefore),
    loopMs: Math.round(r.loopMs),
    peakRssMB: Math.round(r.peakRssMB),
    stateMB: await stateMB(b),
    ...(objectsResent !== undefined
      ? { killedAt: b.killAt, objectsResent, resentPercent: Number(((objectsResent / b.profiles) * 100).toFixed(2)) }
      : {}),
    ...(r.timings
      ? {
          readingSeconds: r.timings.readingSeconds,
          sendingSeconds: r.timings.sendingSeconds,
          firstRequestSeconds: r.timings.firstRequestSeconds ?? null,
        }
      : {}),
  };
  printed.push(line);
  console.log(JSON.stringify(line));
  return r;
}

/** The dry run: its time and memory beside what it predicts. */
async function preview(b: Bench, label: string): Promise<void> {
  const requestsBefore = (await b.sandbox.stats()).requests;
  const r = (await runInChild(b.env, b.exportId, undefined, ['--preview'])) as unknown as {
    preview: { profiles: Record<string, number>; requests: number; dataPoints: number };
    wallSeconds: number;
    cpuSeconds: number;
    peakRssMB: number;
  };
  const sentToBraze = (await b.sandbox.stats()).requests - requestsBefore;
  console.log(
    JSON.stringify({
      run: label,
      ...r.preview.profiles,
      requests: r.preview.requests,
      dataPoints: r.preview.dataPoints,
      wallSeconds: Number(r.wallSeconds.toFixed(2)),
      cpuSeconds: Number(r.cpuSeconds.toFixed(2)),
      peakRssMB: Math.round(r.peakRssMB),
      requestsToBraze: sentToBraze,
    }),
  );
}

/**
 * `--repeat N`: the whole bench N times, each from a fresh Azurite, sandbox and export, then one
 * summary line per kind of run (scripts/bench-summary.ts): a batch, as the targets are read.
 */
const REPEAT = arg('repeat', 1);
if (!Number.isInteger(REPEAT) || REPEAT < 1 || REPEAT > 100) throw new Error('--repeat must be a whole number from 1 to 100');

/** Signals that stop the bench (and its helper processes with it). */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Every run's line printed so far, for the batch's summary. */
const printed: BenchLine[] = [];

async function main(): Promise<void> {
  for (let i = 1; i <= REPEAT; i++) {
    if (REPEAT > 1) process.stderr.write(`bench ${i} of ${REPEAT}\n`);
    await benchOnce();
  }
  if (REPEAT > 1) for (const summary of summarize(printed)) console.log(JSON.stringify(summary));
}

/** Starts Azurite and the sandbox, benches against them (benchWith), and stops them, a stop signal too. */
async function benchOnce(): Promise<void> {
  const azurite = await startAzurite({ tls: STORAGE_TLS });
  offRunCores(azurite.pid);
  let sandbox: Bench['sandbox'] | null = null;
  // Stopped (Ctrl-C, a harness's time limit), the bench takes the run under way, its Azurite and its
  // sandbox with it, once however many signals come, and then ends as the signal would have it.
  let stopping: Promise<void> | null = null;
  const stopAll = () =>
    (stopping ??= (async () => {
      for (const child of runsUnderWay) child.kill('SIGKILL');
      sandbox?.stop();
      await azurite.stop();
    })());
  const onStop = (signal: NodeJS.Signals) =>
    void stopAll().finally(() => {
      for (const s of STOP_SIGNALS) process.off(s, onStop);
      process.kill(process.pid, signal);
    });
  for (const signal of STOP_SIGNALS) process.on(signal, onStop);
  try {
    sandbox = await startSandboxProcess();
    await benchWith(azurite, sandbox);
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, onStop);
    await stopAll();
  }
}

/** Generates the snapshot, then runs the export against it: first, unchanged, changed. */
async function benchWith(azurite: Awaited<ReturnType<typeof startAzurite>>, sandbox: Bench['sandbox']): Promise<void> {
  const profiles = arg('profiles');
  const segments = arg('segments', 2);
  const changePercent = arg('change-percent', 1);
  // --kill-at F: the first run's process is killed (SIGKILL) once F of the profiles reached Braze, and a new one resumes it.
  const killAt = process.argv.includes('--kill-at') ? arg('kill-at') : null;
  const withPreview = process.argv.includes('--preview');
  if (BRAZE_LATENCY_MS > 0) {
    const set = await fetch(`${sandbox.url}/sandbox/faults`, {
      method: 'POST',
      body: JSON.stringify({ slowMs: BRAZE_LATENCY_MS }),
    });
    if (!set.ok) throw new Error(`the sandbox refused --braze-latency-ms (HTTP ${set.status})`);
  }
  const env = {
    AzureWebJobsStorage: azurite.connectionString,
    CI_EXPORT_STORAGE_CONNECTION_STRING: azurite.connectionString,
    LOCAL_SECRET_KEY: Buffer.alloc(32, 3).toString('base64'),
    LOCAL_EXTRA_BRAZE_HOSTS: '127.0.0.1:*,localhost:*',
    LOCAL_TRUST_PRINCIPAL_HEADER: 'true',
    WORKER_TIME_BUDGET_SECONDS: '86400',
  };
  Object.assign(process.env, env);
  const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
  let t = Date.now();
  await writeSnapshot(blobs, profiles, segments, 0, changePercent);
  process.stderr.write(
    `generated ${profiles} profiles × ${segments} segments (${OVERLAP}${OVERLAP === 'random' ? ` p=${P}` : ''}${WIDE ? ', wide rows' : ''}, ${ROWS_PER_PARTITION} rows a partition) in ${((Date.now() - t) / 1000).toFixed(1)} s\n`,
  );
  const b: Bench = {
    blobs,
    sandbox,
    env,
    exportId: await createExport(sandbox.url, segments),
    profiles,
    killAt,
    beside: { sandbox: sandbox.pid, azurite: azurite.pid },
  };
  if (withPreview) await preview(b, 'preview-first');
  await report(b, 'first');
  if (process.argv.includes('--verify')) return await benchVerify(b.sandbox.url, b.exportId, segments, runInChild, b.env);
  if (process.argv.includes('--first-only')) return; // for interleaved comparisons of two builds' first runs
  await report(b, 'unchanged');
  t = Date.now();
  await writeSnapshot(blobs, profiles, segments, 1, changePercent);
  process.stderr.write(`changed ${changePercent} % of profiles in ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
  if (withPreview) await preview(b, `preview-changed-${changePercent}%`);
  await report(b, `changed-${changePercent}%`);
}

/**
 * With `--tls` or `--storage-tls`, the bench runs again in a process that trusts the loopback
 * certificate: Node reads NODE_EXTRA_CA_CERTS only as it starts, and this process talks to the
 * sandbox and Azurite too (the connection's key check, stats, the snapshot); its children inherit
 * it. Certificates the variable named already stay trusted.
 */
function trustingLoopbackCertificate(): Promise<void> | null {
  if ((!TLS && !STORAGE_TLS) || process.env.BENCH_TRUSTS_SANDBOX) return null;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-tls-'));
  const certFile = path.join(dir, 'trusted.pem');
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  writeFileSync(certFile, `${extra && existsSync(extra) ? `${readFileSync(extra, 'utf8')}\n` : ''}${LOCALHOST_CERT}`);
  // Node's flags go along, but not an inspector's: its port is this process's.
  const flags = process.execArgv.filter((f) => !/^--inspect/.test(f));
  const again = spawn(process.execPath, [...flags, ...process.argv.slice(1)], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: certFile, BENCH_TRUSTS_SANDBOX: 'true' },
    stdio: 'inherit',
  });
  // Stopped, it stops the bench it runs (which stops its Azurite and sandbox), and ends as that did.
  for (const signal of STOP_SIGNALS) process.on(signal, () => again.kill(signal));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  return new Promise((_, reject) => {
    again.on('error', (e) => {
      removeDir();
      reject(e);
    });
    again.on('exit', (code, signal) => {
      removeDir();
      for (const s of STOP_SIGNALS) process.removeAllListeners(s);
      if (signal) process.kill(process.pid, signal);
      else process.exit(code ?? 1);
    });
  });
}

(trustingLoopbackCertificate() ?? main()).then(
  () => process.exit(0),
  (error) => {
    console.error(`bench failed: ${(error as Error).stack}`);
    process.exit(1);
  },
);
