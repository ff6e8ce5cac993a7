// `npm run smoke -- --app https://<name>.azurewebsites.net --client-id <authClientId> [--export <id>] [--resource-group <rg> [--name <app>]]`
// After a deployment: is the app up, does sign-in work, does its managed identity reach its storage,
// its Key Vault and the Customer Insights account, are the timer and the queue worker registered, and
// can an export be previewed (a dry run: nothing is sent to Braze, nothing written). Says so in plain
// words, one line a check, and exits 1 when something does not work. The token comes from
// `az account get-access-token` (you, signed in to az); it is sent to the app only, never printed.
import { execFileSync } from 'node:child_process';

export interface SmokeCheck {
  name: string;
  ok: boolean | null; // null: not checked
  detail: string;
}

export interface SmokeOptions {
  /** https://<name>.azurewebsites.net (or the local host's URL). */
  app: string;
  /** Headers for every signed-in call: `Authorization: Bearer …` in Azure. */
  headers: Record<string, string>;
  /** The export to preview; the first one listed when absent. */
  exportId?: string;
  /** The app's registered functions (from `az functionapp function list`), when known. */
  functions?: string[] | null;
  fetchImpl?: typeof fetch;
}

const NEEDED_FUNCTIONS = ['scheduledRefresh', 'exportWorker', 'exportWorkerPoison'];

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON from the app
}

interface SmokeContext {
  o: SmokeOptions;
  call: (method: string, path: string, signedIn?: boolean) => Promise<Answer>;
  add: (name: string, ok: boolean | null, detail: string) => void;
  problem: (a: Answer) => string;
}

/** Calls the app as the smoke check's caller: JSON in and out, an answer (status 0) whatever happens. */
function callerOf(o: SmokeOptions): SmokeContext['call'] {
  const base = o.app.replace(/\/+$/, '');
  const fetchImpl = o.fetchImpl ?? fetch;
  return async (method: string, path: string, signedIn = true): Promise<Answer> => {
    try {
      const res = await fetchImpl(`${base}${path}`, {
        method,
        headers: { ...(signedIn ? o.headers : {}), ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
        body: method === 'POST' ? '{}' : undefined,
        redirect: 'manual',
        signal: AbortSignal.timeout(120_000),
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON (a platform error page): keep the text
      }
      return { status: res.status, body };
    } catch (e) {
      return { status: 0, body: { error: (e as Error).message } };
    }
  };
}

/** The app answers at all (anonymous health). */
async function checkReachable(c: SmokeContext): Promise<void> {
  const { call, add, problem } = c;
  const anonymous = await call('GET', '/api/health', false);
  add(
    'The app answers',
    anonymous.status === 200 || anonymous.status === 503 ? true : false,
    anonymous.status === 200 || anonymous.status === 503
      ? `GET /api/health answers ${anonymous.status} (${anonymous.body?.status ?? 'no status'})`
      : `GET /api/health: ${problem(anonymous)} - is the code deployed, and the app started?`,
  );
}

/** Sign-in: the caller's token is accepted, and with which role. */
async function checkSignIn(c: SmokeContext): Promise<string | undefined> {
  const { call, add, problem } = c;
  const me = await call('GET', '/api/me');
  const role: string | undefined = me.status === 200 ? me.body?.role : undefined;
  add(
    'Sign-in',
    me.status === 200,
    me.status === 200
      ? `you are signed in as ${me.body?.name ?? '?'} with the role ${role}`
      : me.status === 401
        ? 'the app did not accept your token (401): is Authentication on with this client ID, and is the token for api://<client id>?'
        : `GET /api/me: ${problem(me)}`,
  );
  return role;
}

/** Easy Auth, app storage and Key Vault, from the health details an Admin sees. */
async function checkHealth(c: SmokeContext, role: string | undefined): Promise<void> {
  const { call, add, problem } = c;
  const health = await call('GET', '/api/health');
  const details = health.body?.checks as Record<string, { ok: boolean; detail: string }> | undefined;
  if (!details) {
    const why = role === 'Admin' ? problem(health) : 'only an Admin sees the health details';
    for (const name of ['Easy Auth', 'App storage', 'Key Vault']) add(name, null, `not checked: ${why}`);
  } else {
    add(
      'Easy Auth',
      health.body.easyAuthDetected === true,
      health.body.easyAuthDetected
        ? 'App Service Authentication is on'
        : 'App Service Authentication is not on: every signed-in call will be refused (set authClientId and deploy again)',
    );
    const storage = details.storage;
    add(
      'App storage',
      storage ? storage.ok : null,
      storage ? `${storage.ok ? 'reached' : 'not reached'} with the managed identity: ${storage.detail}` : 'not reported',
    );
    const vault = details.keyVault;
    add(
      'Key Vault',
      vault ? vault.ok : null,
      vault ? `${vault.ok ? 'reached' : 'not reached'}: ${vault.detail}` : 'not reported',
    );
    if (typeof health.body.cores === 'number') {
      const cores = health.body.cores as number;
      add('Cores', true, `${cores}: the export engine ${cores > 1 ? 'may read with a second thread' : 'reads on one thread'}`);
    }
    if (details.config && !details.config.ok) add('Settings', false, details.config.detail);
  }
}

/** The Customer Insights storage account, through source discovery. */
async function checkSources(c: SmokeContext, role: string | undefined): Promise<void> {
  const { call, add, problem } = c;
  const sources = await call('GET', '/api/sources');
  const folders = Array.isArray(sources.body?.folders) ? (sources.body.folders as unknown[]).length : 0;
  add(
    'Customer Insights storage',
    sources.status === 200,
    sources.status === 200
      ? folders
        ? `reached: ${folders} CI export folder(s) with a model.json`
        : 'reached, but it holds no CI export folder with a model.json yet (has CI exported there?)'
      : sources.status === 403 && role !== 'Admin' && role !== 'Contributor'
        ? 'not checked: listing sources needs the Admin or Contributor role'
        : `not reached: ${problem(sources)} (does the app's identity have Storage Blob Data Reader on the CI account? See the ciReaderGrantCommand output)`,
  );
}

/** The timer and the queue worker are registered (when the function list was given). */
async function checkFunctions(c: SmokeContext): Promise<void> {
  const { add, o } = c;
  if (o.functions === null || o.functions === undefined) {
    add('Timer and queue worker', null, 'not checked: pass --resource-group to list the functions the app registered');
  } else {
    const missing = NEEDED_FUNCTIONS.filter((f) => !o.functions!.includes(f));
    add(
      'Timer and queue worker',
      missing.length === 0,
      missing.length === 0
        ? `registered: ${NEEDED_FUNCTIONS.join(', ')}`
        : `not registered: ${missing.join(', ')} (the package did not load: see the app's log stream)`,
    );
  }
}

/** A preview of the chosen export (or the first): the whole read path, nothing sent. */
async function checkPreview(c: SmokeContext): Promise<void> {
  const { call, add, problem, o } = c;
  let exportId = o.exportId;
  if (!exportId) {
    const list = await call('GET', '/api/exports');
    exportId = list.status === 200 ? list.body?.value?.[0]?.id : undefined;
  }
  if (!exportId) add('Preview', null, 'not tried: there is no export yet (create one, then run the smoke check again)');
  else {
    const preview = await call('POST', `/api/exports/${encodeURIComponent(exportId)}/preview`);
    add(
      'Preview',
      preview.status === 200,
      preview.status === 200
        ? `export ${exportId}: the next run would read ${preview.body.rowsRead} rows and send ${preview.body.objects} objects in ${preview.body.requests} requests (nothing was sent)`
        : `export ${exportId}: ${problem(preview)}`,
    );
  }
}

export async function runSmoke(o: SmokeOptions): Promise<SmokeCheck[]> {
  const checks: SmokeCheck[] = [];
  const problem = (a: Answer) =>
    a.status === 0 ? `no answer (${a.body.error})` : `HTTP ${a.status}${a.body?.error ? `: ${String(a.body.error)}` : ''}`;
  const c: SmokeContext = { o, call: callerOf(o), add: (name, ok, detail) => checks.push({ name, ok, detail }), problem };
  await checkReachable(c);
  const role = await checkSignIn(c);
  await checkHealth(c, role);
  await checkSources(c, role);
  await checkFunctions(c);
  await checkPreview(c);
  return checks;
}

export function formatSmoke(app: string, checks: SmokeCheck[]): string {
  const mark = (c: SmokeCheck) => (c.ok === true ? 'works  ' : c.ok === false ? 'FAILS  ' : 'skipped');
  const failed = checks.filter((c) => c.ok === false).length;
  return [
    `Smoke check of ${app}`,
    ...checks.map((c) => `  ${mark(c)} ${c.name}: ${c.detail}`),
    failed ? `${failed} check(s) failed: see docs/deploy.md, "When a step fails".` : 'Everything checked works.',
  ].join('\n');
}

function az(args: string[]): string {
  return execFileSync('az', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

if (require.main === module) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const app = arg('app');
  const clientId = arg('client-id') ?? process.env.AUTH_CLIENT_ID;
  if (!app || !/^https?:\/\//.test(app)) {
    console.error(
      'usage: npm run smoke -- --app https://<name>.azurewebsites.net --client-id <authClientId> [--export <id>] [--resource-group <rg>]',
    );
    process.exit(2);
  }
  const headers: Record<string, string> = {};
  if (clientId) {
    try {
      const token = az([
        'account',
        'get-access-token',
        '--scope',
        `api://${clientId}/user_impersonation`,
        '--query',
        'accessToken',
        '-o',
        'tsv',
      ]);
      headers.authorization = `Bearer ${token}`;
    } catch (e) {
      console.error(
        `No token from az (run az login; is the Azure CLI pre-authorized by infra/register-app.sh?): ${firstLineOf(e)}`,
      );
    }
  } else console.error('No --client-id: the signed-in checks will be refused (401).');
  const group = arg('resource-group');
  let functions: string[] | null = null;
  if (group) {
    // The app's name: --name, or the host name's first label (apps with a unique default host name add a suffix there).
    const name = arg('name') ?? new URL(app).hostname.split('.')[0]!;
    try {
      functions = (
        JSON.parse(az(['functionapp', 'function', 'list', '-g', group, '-n', name, '-o', 'json'])) as { name: string }[]
      ).map((f) => f.name.split('/').pop()!);
    } catch (e) {
      console.error(`Could not list the app's functions: ${firstLineOf(e)}`);
    }
  }
  runSmoke({ app, headers, exportId: arg('export'), functions }).then((checks) => {
    console.log(formatSmoke(app, checks));
    process.exit(checks.some((c) => c.ok === false) ? 1 : 0);
  });
}

function firstLineOf(e: unknown): string {
  const err = e as { stderr?: Buffer | string; message?: string };
  return String(err.stderr || err.message || e)
    .split('\n')
    .find((l) => l.trim())!
    .trim();
}
