// The export engine's "done when", over real HTTP against the local host with Azurite and the
// Braze sandbox: on demand (POST …/run → queue worker) and on schedule (the timer).
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimAzurite, type TestStorage } from '../helpers/azurite';
import { BrazeSandbox } from '../../scripts/braze-sandbox';
import { expectedBrazeProfiles, uploadSampleExport } from '../../scripts/sample-data';
import { principalHeaders, testEnv, type Who } from '../helpers/app';
import { normalizeProfiles, sampleExportBody, SANDBOX_KEY } from '../helpers/engine';
import { startHostProcess, type HostProcess } from '../helpers/host-process';

let azurite: TestStorage;
let host: HostProcess;
const sandbox = new BrazeSandbox();

beforeAll(async () => {
  azurite = await claimAzurite();
  await sandbox.start();
  await uploadSampleExport(BlobServiceClient.fromConnectionString(azurite.connectionString));
  // The timer never fires by itself during the test; it is run on demand through the admin endpoint.
  host = await startHostProcess({ ...testEnv(azurite.connectionString), SCHEDULED_REFRESH_SCHEDULE: '0 0 0 1 1 *' });
});
afterAll(async () => {
  await host?.stop();
  await sandbox.stop();
  await azurite?.stop();
});

async function http(method: string, path: string, body?: unknown, as: Who = 'Admin') {
  const res = await fetch(`${host.url}${path}`, {
    method,
    headers: { ...principalHeaders(as), ...(method !== 'GET' ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text,
  };
}

async function waitForRun(runId: string, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const run = await http('GET', `/api/runs/${runId}`, undefined, 'Viewer');
    if (!['queued', 'running'].includes(run.body.status)) return run.body;
    if (Date.now() > until) throw new Error(`run still ${run.body.status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const exportBody = sampleExportBody;

describe('export runs over HTTP', () => {
  let connectionId: string;

  it('on demand: POST …/run answers 202, the run succeeds, and Braze matches the snapshot', async () => {
    const conn = await http('POST', '/api/connections', {
      displayName: 'Sandbox',
      restEndpoint: sandbox.url,
      apiKey: SANDBOX_KEY,
      consent: true,
    });
    expect(conn.status).toBe(201);
    connectionId = conn.body.id;
    const exp = await http('POST', '/api/exports', { ...exportBody(connectionId, 'On demand'), schedule: { enabled: false } });
    expect(exp.status).toBe(201);
    expect(sandbox.stats.requests).toBe(0); // saving never runs

    const started = await http('POST', `/api/exports/${exp.body.id}/run`, undefined, 'Contributor');
    // Contributors may run only on shared connections; this one is not shared.
    expect(started.status).toBe(403);
    const run = await http('POST', `/api/exports/${exp.body.id}/run`);
    expect(run.status).toBe(202);
    expect(run.headers.get('location')).toBe(`/api/runs/${run.body.runId}`);
    const second = await http('POST', `/api/exports/${exp.body.id}/run`);
    expect([202, 409]).toContain(second.status); // 409 names the active run while the first is going
    if (second.status === 409) expect(second.body.error.activeRun.id).toBe(run.body.runId);

    const done = await waitForRun(run.body.runId);
    expect(done.status).toBe('succeeded');
    expect(done.counts.profiles).toBe(done.counts.sent + done.counts.unchanged + done.counts.rejected + done.counts.failed);
    expect(done.counts.rejected).toBe(3);
    expect(normalizeProfiles(sandbox.profileList())).toEqual(normalizeProfiles(expectedBrazeProfiles()));
    const report = await http('GET', done.rejectedReport, undefined, 'Viewer');
    expect(report.status).toBe(200);
    expect(report.body.split('\n')[0]).toBe('segment,partition,record,profileId,reason');
    expect(report.body).toMatch(/no usable identifier/);

    const runs = await http('GET', `/api/exports/${exp.body.id}/runs`, undefined, 'Viewer');
    expect(runs.body.value[0].id).toBe(second.status === 202 ? second.body.runId : run.body.runId);
    const view = await http('GET', `/api/exports/${exp.body.id}`, undefined, 'Viewer');
    expect(view.body.lastRun.status).toBe('succeeded');
    if (second.status === 202) await waitForRun(second.body.runId);
  });

  it('on schedule: the timer queues an export with its schedule on, does nothing when snapshot and settings are unchanged, and runs again when the settings change', async () => {
    sandbox.reset();
    const exp = await http('POST', '/api/exports', exportBody(connectionId, 'Scheduled'));
    expect(exp.status).toBe(201);
    expect((await http('POST', '/admin/functions/scheduledRefresh', {})).status).toBe(202);
    let runs = await http('GET', `/api/exports/${exp.body.id}/runs`);
    expect(runs.body.value).toHaveLength(1);
    expect(runs.body.value[0].trigger).toBe('schedule');
    const done = await waitForRun(runs.body.value[0].id);
    expect(done.status).toBe('succeeded');
    expect(normalizeProfiles(sandbox.profileList())).toEqual(normalizeProfiles(expectedBrazeProfiles()));

    const requestsBefore = sandbox.stats.requests;
    expect((await http('POST', '/admin/functions/scheduledRefresh', {})).status).toBe(202);
    runs = await http('GET', `/api/exports/${exp.body.id}/runs`);
    expect(runs.body.value).toHaveLength(1);
    expect(sandbox.stats.requests).toBe(requestsBefore);

    // Same snapshot, changed settings: worth a run, which sends under the new membership attribute.
    expect((await http('PATCH', `/api/exports/${exp.body.id}`, { membership: { attribute: 'ci_segments' } })).status).toBe(200);
    expect((await http('POST', '/admin/functions/scheduledRefresh', {})).status).toBe(202);
    runs = await http('GET', `/api/exports/${exp.body.id}/runs`);
    expect(runs.body.value).toHaveLength(2);
    // Every profile would go again: the export's guard holds the run for a person, who approves it.
    const held = await waitForRun(runs.body.value[0].id);
    expect(held.status).toBe('held');
    expect(held.held.reasons.join('\n')).toMatch(/changed settings would send \d+ of the \d+ members again/);
    expect(sandbox.stats.requests).toBe(requestsBefore);
    expect((await http('POST', '/admin/functions/scheduledRefresh', {})).status).toBe(202);
    expect((await http('GET', `/api/exports/${exp.body.id}/runs`)).body.value).toHaveLength(2);
    expect((await http('POST', `/api/runs/${held.id}/approve`, {})).status).toBe(202);
    const rerun = await waitForRun(held.id);
    expect(rerun.status).toBe('succeeded');
    expect(rerun.counts.sent).toBe(rerun.counts.profiles - rerun.counts.rejected);
    expect(sandbox.profileList().filter((p) => Array.isArray(p.attributes.ci_segments)).length).toBe(rerun.counts.sent);
  });

  it('run-all queues every export whose schedule is on', async () => {
    const res = await http('POST', '/api/exports/run-all');
    expect(res.status).toBe(202);
    expect(res.body.queued.length + res.body.skipped.length).toBe(1); // only "Scheduled" has its schedule on
    for (const q of res.body.queued) expect((await waitForRun(q.runId)).status).toBe('succeeded');
  });

  it('logs carry run ids and counts, never the key or an email', () => {
    expect(host.output()).toMatch(/run [0-9a-f-]{36}\.\d+[0-9a-f]+ export [0-9a-f-]{36}: succeeded rowsRead=\d+/);
    expect(host.output()).not.toContain(SANDBOX_KEY);
    expect(host.output()).not.toMatch(/@example\.com/);
  });
});
