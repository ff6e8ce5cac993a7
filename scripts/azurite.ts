// Starts Azurite from npm (in memory, free ports) for tests, the demo and benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LOCALHOST_CERT, LOCALHOST_KEY } from './localhost-tls';

const ACCOUNT = 'devstoreaccount1';
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  connectionString: string;
  ports: { blob: number; queue: number; table: number };
  /** Azurite's process (the benchmark pins it to other cores). */
  pid: number;
  stop(): Promise<void>;
}

/** `tls`: Azurite serves https, with the loopback certificate for `localhost` (see startAzurite). */
export function azuriteConnectionString(ports: Azurite['ports'], account = ACCOUNT, tls = false): string {
  const base = tls ? 'https://localhost' : 'http://127.0.0.1';
  return (
    `DefaultEndpointsProtocol=${tls ? 'https' : 'http'};AccountName=${account};AccountKey=${KEY};` +
    `BlobEndpoint=${base}:${ports.blob}/${account};QueueEndpoint=${base}:${ports.queue}/${account};TableEndpoint=${base}:${ports.table}/${account};`
  );
}

export interface AzuriteOptions {
  ports?: Partial<Azurite['ports']>;
  timeoutMs?: number;
  /** More storage accounts beside the default one, each as separate as another Azurite (tests share one this way). */
  extraAccounts?: string[];
  /**
   * Serve https, as Azure Storage does, with the loopback certificate (scripts/localhost-tls.ts):
   * its clients must trust it (NODE_EXTRA_CA_CERTS, as the benchmark's `--storage-tls` sets it).
   */
  tls?: boolean;
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  const location = mkdtempSync(path.join(os.tmpdir(), 'azurite-'));
  const bin = require.resolve('azurite/dist/src/azurite.js');
  const args = [
    bin,
    '--blobPort',
    String(options.ports?.blob ?? 0),
    '--queuePort',
    String(options.ports?.queue ?? 0),
    '--tablePort',
    String(options.ports?.table ?? 0),
    '--inMemoryPersistence',
    '--disableTelemetry',
    '--skipApiVersionCheck',
    '--loose',
    '--silent',
  ];
  if (options.tls) {
    writeFileSync(path.join(location, 'cert.pem'), LOCALHOST_CERT);
    writeFileSync(path.join(location, 'key.pem'), LOCALHOST_KEY);
    args.push('--cert', path.join(location, 'cert.pem'), '--key', path.join(location, 'key.pem'));
  }
  const accounts = options.extraAccounts?.length
    ? [ACCOUNT, ...options.extraAccounts].map((a) => `${a}:${KEY}`).join(';')
    : undefined;
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: location,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: accounts ? { ...process.env, AZURITE_ACCOUNTS: accounts } : process.env,
  });
  const ports: Partial<Azurite['ports']> = {};
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Azurite did not start in time:\n${output}`)), options.timeoutMs ?? 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      for (const m of output.matchAll(
        /Azurite (Blob|Queue|Table) service is successfully listening at https?:\/\/127\.0\.0\.1:(\d+)/g,
      )) {
        ports[m[1]!.toLowerCase() as keyof Azurite['ports']] = Number(m[2]);
      }
      if (ports.blob && ports.queue && ports.table) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Azurite exited (${code}):\n${output}`));
    });
  });
  child.removeAllListeners('exit');
  const full = ports as Azurite['ports'];
  return {
    connectionString: azuriteConnectionString(full, ACCOUNT, options.tls),
    ports: full,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(location, { recursive: true, force: true });
    },
  };
}
