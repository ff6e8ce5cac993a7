// `npm run demo`: the main job end to end on embedded defaults — Azurite (in memory), the Braze
// sandbox, the bundled sample CI export, the app under the local host; then a connection, an
// export, one run with a progress display, and a summary of what reached Braze; a verification that
// finds nothing, one that finds a drift made in the sandbox, and a repair (demo-proof.ts); then the
// console's address (kept serving at a terminal, or with --keep).
import { appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite } from './azurite';
import { BrazeSandbox } from './braze-sandbox';
import { proveAndRepair } from './demo-proof';
import { loadLocalSettings, trustLoopbackCallers } from './local-settings';
import { SAMPLE_CONTAINER, SAMPLE_FOLDER, SAMPLE_MATCHING, SAMPLE_SEGMENTS, uploadSampleExport } from './sample-data';

/** Keep the app serving after the demo, for its console: asked for, or a person at a terminal. */
const KEEP_SERVING = process.argv.includes('--keep') || (Boolean(process.stdout.isTTY) && Boolean(process.stdin.isTTY));

type Api = (method: string, path: string, body?: unknown) => Promise<any>;

/** The app's JSON API on the local host, as a script would call it; an error answer throws with its body. */
const apiOf =
  (baseUrl: string): Api =>
  async (method, path, body) => {
    const res = await fetch(`${baseUrl}/api/${path}`, {
      method,
      headers: method !== 'GET' ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = (await res.json()) as any;
    if (res.status >= 400) throw new Error(`${method} /api/${path} → ${res.status}: ${JSON.stringify(json.error)}`);
    return json;
  };

/** A connection to the sandbox and an export of the sample segments, through the API. */
async function createDemoExport(api: Api, sandboxUrl: string): Promise<any> {
  const connection = await api('POST', 'connections', {
    displayName: 'Braze sandbox',
    restEndpoint: sandboxUrl,
    apiKey: 'sandbox-key',
    allowContributors: true,
    consent: true,
  });
  console.log(`Connection "${connection.displayName}" → ${connection.restEndpoint} (key ${connection.apiKey.hint})`);
  const exp = await api('POST', 'exports', {
    name: 'Sample segments to Braze',
    connectionId: connection.id,
    brazeSegmentApiId: '0000-0000-0000',
    source: { container: SAMPLE_CONTAINER, folder: SAMPLE_FOLDER },
    segments: [...SAMPLE_SEGMENTS],
    matching: SAMPLE_MATCHING,
    schedule: { enabled: true },
  });
  console.log(
    `Export "${exp.name}": ${exp.segments.join(', ')} → attribute "${exp.membership.attribute ?? exp.brazeSegmentApiId}"`,
  );
  return exp;
}

/** Polls a run until it ends; `show` gets a progress line each time. */
async function runEnded(api: Api, runId: string, show?: (line: string) => void): Promise<any> {
  for (;;) {
    const run = await api('GET', `runs/${runId}`);
    const c = run.counts;
    show?.(
      `  ${run.status.padEnd(10)} ${String(run.phase ?? '').padEnd(8)} rows ${c.rowsRead}  sent ${c.sent}  unchanged ${c.unchanged}  rejected ${c.rejected}  failed ${c.failed}  requests ${run.requests.sent}`,
    );
    if (!['queued', 'running'].includes(run.status)) return run;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** One line redrawn on a terminal; one line per change otherwise (CI logs, files). */
function progressLine(): (line: string) => void {
  let last = '';
  return (line) => {
    if (process.stdout.isTTY) process.stdout.write(`\r${line}   `);
    else if (line !== last) console.log(line);
    last = line;
  };
}

/** What the run did and what Braze holds now. */
async function printSummary(run: any, sandbox: BrazeSandbox, hostUrl: string): Promise<void> {
  const c = run.counts;
  const profiles = sandbox.profileList();
  console.log('Summary');
  console.log(`  status            ${run.status}`);
  console.log(`  snapshot          ${run.snapshot?.folder} (${run.snapshot?.modifiedTime})`);
  const segmentRows = Object.entries(run.segments).map(([s, v]: [string, any]) => `${s} ${v.rows}`);
  console.log(`  rows read         ${c.rowsRead}  (${segmentRows.join(', ')})`);
  console.log(
    `  profiles          ${c.profiles} = sent ${c.sent} + unchanged ${c.unchanged} + rejected ${c.rejected} + failed ${c.failed}`,
  );
  console.log(`  left out values   ${JSON.stringify(run.omittedAttributes)}`);
  console.log(
    `  Braze requests    ${run.requests.sent} (retried ${run.requests.retried}, rate limited ${run.requests.rateLimited})`,
  );
  if (run.rejectedReport) {
    const csv = await (await fetch(`${hostUrl}${run.rejectedReport}`)).text();
    console.log(`  rejected rows     ${run.rejectedReport}`);
    for (const line of csv.trim().split('\n')) console.log(`    ${line}`);
  }
  const byExternalId = profiles.filter((p) => p.identifier.external_id).length;
  const byAlias = profiles.filter((p) => p.identifier.user_alias).length;
  console.log(`  in Braze now      ${profiles.length} profiles (${byExternalId} by external_id, ${byAlias} by user_alias)`);
  for (const p of profiles.slice(0, 2)) console.log(`    ${JSON.stringify(p.identifier)} ${JSON.stringify(p.attributes)}`);
}

async function main(): Promise<void> {
  const azurite = await startAzurite();
  const sandbox = new BrazeSandbox();
  await sandbox.start();
  Object.assign(process.env, {
    AzureWebJobsStorage: azurite.connectionString,
    CI_EXPORT_STORAGE_CONNECTION_STRING: azurite.connectionString,
    SCHEDULED_REFRESH_SCHEDULE: '0 0 0 1 1 *', // the demo runs on demand only
    LOCAL_QUEUE_MAX_POLL_MS: '200',
    VERIFY_POLL_SECONDS: '0.2', // the sandbox makes its exports at once
  });
  // The demo's local host listens on 127.0.0.1 only: its console acts as Admin.
  const explicit = new Set(Object.keys(process.env));
  loadLocalSettings();
  trustLoopbackCallers(explicit);
  console.log(`Azurite (in memory): blob ${azurite.ports.blob}, queue ${azurite.ports.queue}, table ${azurite.ports.table}`);
  console.log(`Braze sandbox: ${sandbox.url}`);

  await uploadSampleExport(BlobServiceClient.fromConnectionString(azurite.connectionString));
  console.log(`Sample CI export: ${SAMPLE_CONTAINER}/${SAMPLE_FOLDER} (${SAMPLE_SEGMENTS.join(', ')})`);

  const { startLocalHost } = await import('./local-host');
  const logFile = path.join(os.tmpdir(), `ci-braze-demo-${process.pid}.log`);
  const host = await startLocalHost({ port: 0, logLine: (line) => appendFileSync(logFile, `${line}\n`) });
  console.log(`App (local host): ${host.url}/api  (function logs: ${logFile})\n`);
  const api = apiOf(host.url);
  try {
    const exp = await createDemoExport(api, sandbox.url);
    const started = await api('POST', `exports/${exp.id}/run`);
    console.log(`Run queued: ${started.location}`);
    const run = await runEnded(api, started.runId, progressLine());
    console.log(process.stdout.isTTY ? '\n' : '');
    await printSummary(run, sandbox, host.url);

    const again = await runEnded(api, (await api('POST', `exports/${exp.id}/run`)).runId);
    const c = again.counts;
    console.log(
      `\nSame snapshot again: ${again.status}, sent ${c.sent}, unchanged ${c.unchanged}, Braze requests ${again.requests.sent}`,
    );
    const proven = await proveAndRepair(api, runEnded, sandbox, host.url, exp);
    process.exitCode = again.status === 'succeeded' && proven ? 0 : 1;
    console.log(`\nConsole: ${host.url}/  (the demo's connection, export and runs; locally you are the Admin)`);
    // A person at a terminal gets to open it; CI and pipes get the exit code.
    if (KEEP_SERVING) {
      console.log('Serving until Ctrl+C.');
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    } else console.log('(npm run demo -- --keep keeps it serving)');
  } finally {
    await host.close();
    await sandbox.stop();
    await azurite.stop();
  }
}

main().catch((error) => {
  console.error(`Demo failed: ${(error as Error).message}`);
  process.exit(1);
});
