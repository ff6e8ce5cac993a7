// A thin stand-in for the Functions host (no Core Tools needed): it provides the
// `@azure/functions-core` module the real worker provides, captures each `registerFunction`
// call made by the app's own `app.http` / `app.timer` / `app.storageQueue` registrations, and
// serves them: HTTP routes under host.json's routePrefix (catch-all `{*rest}` included), timers on their NCRONTAB schedule, Storage Queue triggers
// with dequeue counts and a poison queue, and Core Tools' `POST /admin/functions/{name}` to run a
// non-HTTP function on demand. Same code, same settings as `func start`.
import { randomUUID } from 'node:crypto';
import { isLoopbackHost } from '../shared/loopback';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import Module from 'node:module';
import path from 'node:path';
import { QueueClient, type DequeuedMessageItem } from '@azure/storage-queue';
import { nextOccurrence } from '../shared/schedule';
import { readCappedBody } from './capped-body';
import { loadLocalSettings } from './local-settings';

interface Binding {
  type: string;
  direction: string;
  name: string;
  route?: string;
  methods?: string[];
  schedule?: string;
  queueName?: string;
  connection?: string;
}
interface Registration {
  name: string;
  bindings: Binding[];
  handler: (...args: unknown[]) => unknown;
}

const registrations: Registration[] = [];

/** Makes `require('@azure/functions-core')` return our capture, before the app loads. */
function installCoreShim(): void {
  const coreApi = {
    version: 'local-host',
    hostVersion: '4.0.0-local',
    setProgrammingModel: () => undefined,
    getProgrammingModel: () => undefined,
    registerHook: () => ({ dispose: () => undefined }),
    registerFunction(
      metadata: { name: string; bindings: Record<string, Omit<Binding, 'name'>> },
      handler: Registration['handler'],
    ) {
      const bindings = Object.entries(metadata.bindings).map(([name, b]) => ({ ...b, name }));
      registrations.push({ name: metadata.name, bindings, handler });
      return { dispose: () => undefined };
    },
  };
  const mod = Module as unknown as { _resolveFilename: (...a: unknown[]) => string; _cache: Record<string, unknown> };
  const original = mod._resolveFilename;
  mod._resolveFilename = function (request: unknown, ...rest: unknown[]) {
    return request === '@azure/functions-core' ? '@azure/functions-core' : original.call(this, request, ...rest);
  };
  mod._cache['@azure/functions-core'] = {
    id: '@azure/functions-core',
    filename: '@azure/functions-core',
    loaded: true,
    exports: coreApi,
  };
}

const trigger = (r: Registration) => r.bindings.find((b) => b.direction === 'in' && /Trigger$/i.test(b.type))!;
const resolveSetting = (v: string) => v.replace(/%([^%]+)%/g, (_, n: string) => process.env[n] ?? '');

type Functions = typeof import('@azure/functions');

let writeLine: (line: string) => void = (line) => void process.stdout.write(`${line}\n`);

/** One JSON line per event, like the Functions host's console (and what Application Insights ingests). */
function log(fields: Record<string, unknown>): void {
  writeLine(JSON.stringify({ time: new Date().toISOString(), ...fields }));
}

function newContext(fx: Functions, name: string, triggerMetadata?: Record<string, unknown>) {
  const invocationId = randomUUID();
  return new fx.InvocationContext({
    invocationId,
    functionName: name,
    triggerMetadata,
    logHandler: (level, ...args) =>
      log({
        level,
        function: name,
        invocationId,
        message: args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '),
      }),
  });
}

// ---- HTTP -------------------------------------------------------------------------------------

interface Route {
  reg: Registration;
  methods: string[];
  segments: string[];
}

function buildRoutes(routePrefix: string): Route[] {
  const literals = (r: Route) => r.segments.filter((s) => !s.startsWith('{')).length;
  return (
    registrations
      .filter((r) => /^httpTrigger$/i.test(trigger(r).type))
      .map((reg) => {
        const t = trigger(reg);
        const route = [routePrefix, t.route ?? reg.name].filter(Boolean).join('/');
        return {
          reg,
          methods: (t.methods ?? ['GET', 'POST']).map((m) => m.toUpperCase()),
          segments: route.split('/').filter(Boolean),
        };
      })
      // Literal segments win over parameters, and a catch-all comes last, as in the Functions host's routing.
      .sort((a, b) => Number(isCatchAll(a)) - Number(isCatchAll(b)) || literals(b) - literals(a))
  );
}

const isCatchAll = (route: Route) => route.segments.at(-1)?.startsWith('{*') ?? false;
const paramName = (segment: string) => segment.replace(/[{}?*]/g, '').split(':')[0]!;

function matchRoute(route: Route, parts: string[]): Record<string, string> | null {
  const catchAll = isCatchAll(route);
  const fixed = catchAll ? route.segments.length - 1 : route.segments.length;
  if (catchAll ? parts.length < fixed : parts.length !== fixed) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < fixed; i++) {
    const seg = route.segments[i]!;
    const part = parts[i]!;
    if (seg.startsWith('{')) params[paramName(seg)] = decodeURIComponent(part);
    else if (seg.toLowerCase() !== part.toLowerCase()) return null;
  }
  if (catchAll) params[paramName(route.segments.at(-1)!)] = parts.slice(fixed).map(decodeURIComponent).join('/');
  return params;
}

const MAX_HOST_BODY = 4 * 1024 * 1024;

/** The request's body, or 'too-large' past MAX_HOST_BODY. */
async function readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
  return (await readCappedBody(req, MAX_HOST_BODY)) ?? 'too-large';
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * The local host listens on loopback and lets local-only settings (anonymous Admin, trusted
 * principal headers) through, so a web page elsewhere must not reach it by DNS rebinding: the
 * Host header has to name a loopback host (the shared HTTP edge checks it too, for Core Tools).
 */
export { isLoopbackHost } from '../shared/loopback';

async function handleHttp(
  fx: Functions,
  routes: Route[],
  req: IncomingMessage,
  res: ServerResponse,
  baseUrl: string,
): Promise<void> {
  if (!isLoopbackHost(req.headers.host)) {
    return send(res, 421, {
      error: { code: 'misdirected_request', message: 'The local host answers only requests addressed to localhost or 127.0.0.1' },
    });
  }
  const url = new URL(req.url ?? '/', baseUrl);
  const method = (req.method ?? 'GET').toUpperCase();
  const body = await readBody(req);
  if (body === 'too-large') {
    res.setHeader('Connection', 'close');
    return send(res, 413, {
      error: { code: 'payload_too_large', message: `The request body is larger than ${MAX_HOST_BODY} bytes` },
    });
  }

  const admin = /^\/admin\/functions\/([^/]+)$/.exec(url.pathname);
  if (admin && method === 'POST') return invokeByName(fx, decodeURIComponent(admin[1]!), body, res);

  const parts = url.pathname.split('/').filter(Boolean);
  let methodMismatch = false;
  for (const route of routes) {
    const params = matchRoute(route, parts);
    if (!params) continue;
    if (!route.methods.includes(method)) {
      methodMismatch = true;
      continue;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    const request = new fx.HttpRequest({
      method,
      url: url.toString(),
      headers,
      query: Object.fromEntries(url.searchParams),
      params,
      body: body.length > 0 ? { bytes: body } : undefined,
    });
    const context = newContext(fx, route.reg.name);
    const started = Date.now();
    let response: InstanceType<Functions['HttpResponse']>;
    try {
      const result = (await route.reg.handler(request, context)) as ConstructorParameters<Functions['HttpResponse']>[0];
      response = result instanceof fx.HttpResponse ? result : new fx.HttpResponse(result);
    } catch (error) {
      log({ level: 'error', function: route.reg.name, message: `Unhandled: ${(error as Error).message}` });
      return send(res, 500, { error: { code: 'internal_error', message: 'The function failed' } });
    }
    const payload = Buffer.from(await response.arrayBuffer());
    const outHeaders: Record<string, string> = {};
    response.headers.forEach((v, k) => (outHeaders[k] = v));
    res.writeHead(response.status, outHeaders);
    res.end(payload);
    log({
      level: 'information',
      function: route.reg.name,
      message: `${method} ${url.pathname} → ${response.status} (${Date.now() - started} ms)`,
    });
    return;
  }
  if (methodMismatch) return send(res, 405, { error: { code: 'method_not_allowed', message: `${method} is not allowed here` } });
  send(res, 404, { error: { code: 'not_found', message: 'No such route' } });
}

/** Core Tools' admin endpoint: runs a timer or queue function now, with `{ "input": ... }`. */
async function invokeByName(fx: Functions, name: string, body: Buffer, res: ServerResponse): Promise<void> {
  const reg = registrations.find((r) => r.name.toLowerCase() === name.toLowerCase());
  if (!reg) return send(res, 404, { error: { code: 'not_found', message: `No function named ${name}` } });
  let input: unknown;
  try {
    input = body.length ? (JSON.parse(body.toString('utf8')) as { input?: unknown }).input : undefined;
  } catch {
    return send(res, 400, { error: { code: 'bad_request', message: 'Body must be JSON: { "input": ... }' } });
  }
  const t = trigger(reg);
  const arg = /^timerTrigger$/i.test(t.type)
    ? timerArg(false)
    : parseQueuePayload(typeof input === 'string' ? input : JSON.stringify(input ?? null));
  try {
    await reg.handler(arg, newContext(fx, reg.name));
    send(res, 202, { invoked: reg.name });
  } catch (error) {
    send(res, 500, { error: { code: 'function_failed', message: (error as Error).message } });
  }
}

// ---- Timers -----------------------------------------------------------------------------------

const timerArg = (isPastDue: boolean) => ({ isPastDue, schedule: { adjustForDST: false }, scheduleStatus: {} });

function startTimers(fx: Functions): () => void {
  const timeouts: NodeJS.Timeout[] = [];
  let stopped = false;
  for (const reg of registrations.filter((r) => /^timerTrigger$/i.test(trigger(r).type))) {
    const schedule = resolveSetting(trigger(reg).schedule ?? '');
    const arm = () => {
      if (stopped) return;
      const delay = Math.max(0, nextOccurrence(schedule, new Date()).getTime() - Date.now());
      // Timers never overlap themselves: the next one is armed after this one finishes.
      const t = setTimeout(
        async () => {
          try {
            await reg.handler(timerArg(false), newContext(fx, reg.name));
          } catch (error) {
            log({ level: 'error', function: reg.name, message: `Timer run failed: ${(error as Error).message}` });
          }
          arm();
        },
        Math.min(delay, 2_147_000_000),
      );
      timeouts.push(t);
    };
    arm();
    log({ level: 'information', message: `Timer ${reg.name}: ${schedule} (UTC)` });
  }
  return () => {
    stopped = true;
    timeouts.forEach(clearTimeout);
  };
}

// ---- Queues -----------------------------------------------------------------------------------

/** The worker hands queue triggers parsed JSON when the message is JSON, else the string. */
function parseQueuePayload(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** host.json's "hh:mm:ss" (seconds may have a fraction) in seconds. */
function timeSpanSeconds(value: unknown): number {
  const [h = 0, m = 0, s = 0] = String(value).split(':').map(Number);
  return h * 3600 + m * 60 + s;
}

interface QueueSettings {
  batchSize: number;
  maxDequeueCount: number;
  /** host.json visibilityTimeout: how long a failed message waits before its retry. */
  retryDelaySeconds: number;
  /** How long a message stays hidden while its function runs (renewed until it ends). */
  inFlightSeconds: number;
  maxPollingIntervalMs: number;
}

/** One queue message through its function, as the Functions host does it: hidden while it runs, deleted after, poisoned after the last attempt. */
async function deliver(
  fx: Functions,
  reg: Registration,
  queues: { queue: QueueClient; poison: QueueClient },
  m: DequeuedMessageItem,
  settings: QueueSettings,
): Promise<void> {
  const { queue, poison } = queues;
  const text = Buffer.from(m.messageText, 'base64').toString('utf8');
  const context = newContext(fx, reg.name, {
    id: m.messageId,
    dequeueCount: m.dequeueCount,
    insertionTime: m.insertedOn,
    expirationTime: m.expiresOn,
    nextVisibleTime: m.nextVisibleOn,
    popReceipt: m.popReceipt,
  });
  // Like the Functions host, keep the message hidden while the function runs.
  let popReceipt = m.popReceipt;
  const keepHidden = setInterval(
    () => {
      queue
        .updateMessage(m.messageId, popReceipt, undefined, settings.inFlightSeconds)
        .then((r) => (popReceipt = r.popReceipt ?? popReceipt))
        .catch(() => undefined);
    },
    (settings.inFlightSeconds * 1000) / 3,
  );
  try {
    await reg.handler(parseQueuePayload(text), context);
    clearInterval(keepHidden);
    await queue.deleteMessage(m.messageId, popReceipt);
  } catch (error) {
    clearInterval(keepHidden);
    log({
      level: 'error',
      function: reg.name,
      message: `Queue message ${m.messageId} failed (attempt ${m.dequeueCount}): ${(error as Error).message}`,
    });
    if (m.dequeueCount >= settings.maxDequeueCount) {
      await poison.createIfNotExists();
      await poison.sendMessage(m.messageText);
      await queue.deleteMessage(m.messageId, popReceipt);
    } else {
      await queue.updateMessage(m.messageId, popReceipt, undefined, settings.retryDelaySeconds).catch(() => undefined);
    }
  }
}

function startQueueListeners(fx: Functions, settings: QueueSettings): () => Promise<void> {
  let stopped = false;
  const loops: Promise<void>[] = [];
  for (const reg of registrations.filter((r) => /^queueTrigger$/i.test(trigger(r).type))) {
    const t = trigger(reg);
    const queueName = resolveSetting(t.queueName ?? '');
    const connection = process.env[t.connection || 'AzureWebJobsStorage'];
    if (!connection) throw new Error(`Queue trigger ${reg.name}: setting ${t.connection || 'AzureWebJobsStorage'} is missing`);
    const queues = { queue: new QueueClient(connection, queueName), poison: new QueueClient(connection, `${queueName}-poison`) };
    const poll = async () => {
      await queues.queue.createIfNotExists();
      let idle = 50;
      while (!stopped) {
        let messages: DequeuedMessageItem[];
        try {
          messages = (
            await queues.queue.receiveMessages({
              numberOfMessages: settings.batchSize,
              visibilityTimeout: settings.inFlightSeconds,
            })
          ).receivedMessageItems;
        } catch (error) {
          log({ level: 'warning', function: reg.name, message: `Queue poll failed: ${(error as Error).message}` });
          messages = [];
        }
        if (messages.length === 0) {
          await new Promise((r) => setTimeout(r, idle));
          idle = Math.min(idle * 2, settings.maxPollingIntervalMs);
          continue;
        }
        idle = 50;
        await Promise.all(messages.map((m) => deliver(fx, reg, queues, m, settings)));
      }
    };
    loops.push(poll());
  }
  return async () => {
    stopped = true;
    await Promise.allSettled(loops);
  };
}

// ---- Start ------------------------------------------------------------------------------------

export interface LocalHost {
  url: string;
  functions: string[];
  close(): Promise<void>;
}

export async function startLocalHost(
  options: { port?: number; appMain?: string; logLine?: (line: string) => void } = {},
): Promise<LocalHost> {
  if (options.logLine) writeLine = options.logLine;
  installCoreShim();
  const root = path.resolve(__dirname, '..', '..');
  // Loaded only now, after the shim is installed: @azure/functions looks for it when it is first required.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const fx = require('@azure/functions') as Functions;
  require(options.appMain ?? path.join(root, 'dist', 'functions', 'index.js'));
  const hostJson = require(path.join(root, 'host.json')) as {
    extensions?: { queues?: Record<string, unknown>; http?: { routePrefix?: string } };
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
  const q = hostJson.extensions?.queues ?? {};

  const routes = buildRoutes(hostJson.extensions?.http?.routePrefix ?? 'api');
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(options.port ?? 7071, '127.0.0.1', resolve));
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : options.port}`;
  server.on('request', (req, res) => {
    handleHttp(fx, routes, req, res, url).catch((error) => {
      log({ level: 'error', message: `Host error: ${(error as Error).message}` });
      if (!res.headersSent) send(res, 500, { error: { code: 'internal_error', message: 'Host error' } });
    });
  });
  const stopTimers = startTimers(fx);
  const stopQueues = startQueueListeners(fx, {
    batchSize: Number(q.batchSize ?? 16),
    maxDequeueCount: Number(q.maxDequeueCount ?? 5),
    retryDelaySeconds: timeSpanSeconds(q.visibilityTimeout ?? '00:00:30'),
    inFlightSeconds: Number(process.env.LOCAL_QUEUE_VISIBILITY_SECONDS ?? 60),
    maxPollingIntervalMs: Number(
      process.env.LOCAL_QUEUE_MAX_POLL_MS ?? timeSpanSeconds(q.maxPollingInterval ?? '00:01:00') * 1000,
    ),
  });
  return {
    url,
    functions: registrations.map((r) => r.name),
    close: async () => {
      stopTimers();
      await stopQueues();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

if (require.main === module) {
  loadLocalSettings();
  startLocalHost({ port: Number(process.env.LOCAL_HOST_PORT ?? 7071) }).then(
    (host) => {
      log({ level: 'information', message: `Local host listening on ${host.url} with functions: ${host.functions.join(', ')}` });
      log({ level: 'information', message: `Console: ${host.url}/` });
      const stop = () => host.close().then(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    },
    (error) => {
      process.stderr.write(`${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
