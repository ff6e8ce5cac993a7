// `npm start`: `func start` where Azure Functions Core Tools are installed, otherwise the local
// host. With the default local settings (UseDevelopmentStorage=true) it starts Azurite (in memory,
// default ports) when nothing is listening there yet.
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { startAzurite } from './azurite';
import { loadLocalSettings, repoRoot, trustLoopbackCallers } from './local-settings';

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });

async function main(): Promise<void> {
  const explicit = new Set(Object.keys(process.env));
  loadLocalSettings();
  const usesDevStorage = [process.env.AzureWebJobsStorage, process.env.CI_EXPORT_STORAGE_CONNECTION_STRING].includes(
    'UseDevelopmentStorage=true',
  );
  if (usesDevStorage && !(await portOpen(10000))) {
    const azurite = await startAzurite({ ports: { blob: 10000, queue: 10001, table: 10002 } });
    console.log('Azurite (in memory) on 127.0.0.1:10000-10002');
    const stop = () => void azurite.stop().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  }
  const hasFunc = spawnSync('func', ['--version'], { stdio: 'ignore' }).status === 0;
  if (hasFunc && process.env.LOCAL_HOST !== 'true') {
    console.log('Core Tools found: func start (console at http://localhost:7071/ once it is up)');
    spawn('func', ['start'], { cwd: repoRoot, stdio: 'inherit' }).on('exit', (code) => process.exit(code ?? 0));
    return;
  }
  console.log('Core Tools not found: serving the functions with the local host (scripts/local-host.ts)');
  trustLoopbackCallers(explicit);
  const { startLocalHost } = await import('./local-host');
  const host = await startLocalHost({ port: Number(process.env.LOCAL_HOST_PORT ?? 7071) });
  console.log(`Local host listening on ${host.url} with functions: ${host.functions.join(', ')}`);
  console.log(`Console: ${host.url}/`);
}

main().catch((error) => {
  console.error((error as Error).message);
  process.exit(1);
});
