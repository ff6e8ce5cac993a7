// `npm run demo`: the main job end to end on embedded defaults — Azurite (in memory), the Braze
// sandbox, the bundled sample CI export, the app under the local host; then a connection, an
// export, one run with a progress display, and a summary of what reached Braze; then the
// console's address (kept serving at a terminal, or with --keep).
import { appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite } from './azurite';
import { BrazeSandbox } from './braze-sandbox';
import { loadLocalSettings } from './local-settings';
import { SAMPLE_CONTAINER, SAMPLE_FOLDER, SAMPLE_MATCHING, SAMPLE_SEGMENTS, uploadSampleExport } from './sample-data';

/** Keep the app serving after the demo, for its console: asked for, or a person at a terminal. */
const KEEP_SERVING = process.argv.includes('--keep') || (Boolean(process.stdout.isTTY) && Boolean(process.stdin.isTTY));

async function main(): Promise<void> {
  const azurite = await startAzurite();
  const sandbox = new BrazeSandbox();
  await sandbox.start();
  Object.assign(process.env, {
    AzureWebJobsStorage: azurite.connectionString,
    CI_EXPORT_STORAGE_CONNECTION_STRING: azurite.connectionString,
    SCHEDULED_REFRESH_SCHEDULE: '0 0 0 1 1 *', // the demo runs on demand only
    LOCAL_QUEUE_MAX_POLL_MS: '200',
  });
  loadLocalSettings();
  console.log(`Azurite (in memory): blob ${azurite.ports.blob}, queue ${azurite.ports.queue}, table ${azurite.ports.table}`);
  console.log(`Braze sandbox: ${sandbox.url}`);

  await uploadSampleExport(BlobServiceClient.fromConnectionString(azurite.connectionString));
  console.log(`Sample CI export: ${SAMPLE_CONTAINER}/${SAMPLE_FOLDER} (${SAMPLE_SEGMENTS.join(', ')})`);

  const { startLocalHost } = await import('./local-host');
  const logFile = path.join(os.tmpdir(), `ci-braze-demo-${process.pid}.log`);
  const host = await startLocalHost({ port: 0, logLine: (line) => appendFileSync(logFile, `${line}\n`) });
  console.log(`App (local host): ${host.url}/api  (function logs: ${logFile})\n`);
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${host.url}/api/${path}`, {
      method,
      headers: method !== 'GET' ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = (await res.json()) as any;
    if (res.status >= 400) throw new Error(`${method} /api/${path} → ${res.status}: ${JSON.stringify(json.error)}`);
    return json;
  };

  try {
    const connection = await api('POST', 'connections', {
      displayName: 'Braze sandbox',
      restEndpoint: sandbox.url,
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

    const started = await api('POST', `exports/${exp.id}/run`);
    console.log(`Run queued: ${started.location}`);
    let run: any;
    let lastLine = '';
    for (;;) {
      run = await api('GET', `runs/${started.runId}`);
      const c = run.counts;
      const line = `  ${run.status.padEnd(10)} ${String(run.phase ?? '').padEnd(8)} rows ${c.rowsRead}  sent ${c.sent}  unchanged ${c.unchanged}  rejected ${c.rejected}  failed ${c.failed}  requests ${run.requests.sent}`;
      // One line redrawn on a terminal; one line per change otherwise (CI logs, files).
      if (process.stdout.isTTY) process.stdout.write(`\r${line}   `);
      else if (line !== lastLine) console.log(line);
      lastLine = line;
      if (!['queued', 'running'].includes(run.status)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    console.log(process.stdout.isTTY ? '\n' : '');
    const c = run.counts;
    const profiles = sandbox.profileList();
    console.log('Summary');
    console.log(`  status            ${run.status}`);
    console.log(`  snapshot          ${run.snapshot?.folder} (${run.snapshot?.modifiedTime})`);
    console.log(
      `  rows read         ${c.rowsRead}  (${Object.entries(run.segments)
        .map(([s, v]: [string, any]) => `${s} ${v.rows}`)
        .join(', ')})`,
    );
    console.log(
      `  profiles          ${c.profiles} = sent ${c.sent} + unchanged ${c.unchanged} + rejected ${c.rejected} + failed ${c.failed}`,
    );
    console.log(`  left out values   ${JSON.stringify(run.omittedAttributes)}`);
    console.log(
      `  Braze requests    ${run.requests.sent} (retried ${run.requests.retried}, rate limited ${run.requests.rateLimited})`,
    );
    if (run.rejectedReport) {
      const csv = await (await fetch(`${host.url}${run.rejectedReport}`)).text();
      console.log(`  rejected rows     ${run.rejectedReport}`);
      for (const line of csv.trim().split('\n')) console.log(`    ${line}`);
    }
    console.log(
      `  in Braze now      ${profiles.length} profiles (${profiles.filter((p) => p.identifier.external_id).length} by external_id, ${profiles.filter((p) => p.identifier.user_alias).length} by user_alias)`,
    );
    for (const p of profiles.slice(0, 2)) console.log(`    ${JSON.stringify(p.identifier)} ${JSON.stringify(p.attributes)}`);

    const again = await api('POST', `exports/${exp.id}/run`);
    for (;;) {
      run = await api('GET', `runs/${again.runId}`);
      if (!['queued', 'running'].includes(run.status)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    console.log(
      `\nSame snapshot again: ${run.status}, sent ${run.counts.sent}, unchanged ${run.counts.unchanged}, Braze requests ${run.requests.sent}`,
    );
    process.exitCode = run.status === 'succeeded' ? 0 : 1;
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
