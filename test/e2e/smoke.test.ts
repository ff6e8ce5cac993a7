// npm run smoke's report, against the project's local host (Azurite behind it): what it says when
// things work, when sign-in is missing, and when there is no export to preview yet. Azure itself is
// out of reach here; the Easy Auth check reads "not on", as it should locally.
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimAzurite, type TestStorage } from '../helpers/azurite';
import { formatSmoke, runSmoke, type SmokeCheck } from '../../scripts/smoke';
import { principalHeaders, testEnv } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { startHostProcess, type HostProcess } from '../helpers/host-process';

let azurite: TestStorage;
let host: HostProcess;
let functions: string[];

beforeAll(async () => {
  azurite = await claimAzurite();
  host = await startHostProcess(testEnv(azurite.connectionString));
  functions = /with functions: (.*)/.exec(host.output())![1]!.split(', ');
}, 60_000);
afterAll(async () => {
  await host?.stop();
  await azurite?.stop();
});

const byName = (checks: SmokeCheck[]) => Object.fromEntries(checks.map((c) => [c.name, c]));

describe('npm run smoke', () => {
  it('without an export yet: everything but Easy Auth works, and the preview is not tried', async () => {
    const checks = byName(await runSmoke({ app: host.url, headers: principalHeaders('Admin'), functions }));
    expect(checks['The app answers']).toMatchObject({ ok: true, detail: expect.stringMatching(/answers 200 \(healthy\)/) });
    expect(checks['Sign-in']).toMatchObject({ ok: true, detail: expect.stringMatching(/with the role Admin/) });
    expect(checks['Easy Auth']).toMatchObject({ ok: false, detail: expect.stringMatching(/not on/) });
    expect(checks['App storage']).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^reached with the managed identity/),
    });
    expect(checks['Key Vault']!.ok).toBe(true);
    expect(checks['Cores']).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^\d+: the export engine (reads on one thread|may read with a second thread)$/),
    });
    expect(checks['Customer Insights storage']!.ok).toBe(true);
    expect(checks['Timer and queue worker']).toMatchObject({
      ok: true,
      detail: 'registered: scheduledRefresh, exportWorker, exportWorkerPoison',
    });
    expect(checks['Preview']).toMatchObject({ ok: null, detail: expect.stringMatching(/no export yet/) });
  }, 60_000);

  it('previews the first export (or the one named) and reports it in plain words; a missing function is named', async () => {
    const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const source = await writeCiExport(blobs, [{ segment: 'S', partitions: [rows(12)] }]);
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${host.url}${path}`, {
        method: 'POST',
        headers: { ...principalHeaders('Admin'), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(res.status, await res.clone().text()).toBe(201);
      return (await res.json()) as { id: string };
    };
    const conn = await post('/api/connections', {
      displayName: 'Braze smoke',
      restEndpoint: 'rest.iad-03.braze.com',
      apiKey: 'smoke-test-key-0123456789',
      consent: true,
    });
    const exp = await post('/api/exports', {
      name: 'Smoke export',
      connectionId: conn.id,
      brazeSegmentApiId: '0000-0000-0000',
      source,
      segments: ['S'],
      matching: MATCHING,
      schedule: { enabled: false },
    });
    const checks = await runSmoke({
      app: host.url,
      headers: principalHeaders('Admin'),
      functions: functions.filter((f) => f !== 'exportWorkerPoison'),
    });
    const c = byName(checks);
    expect(c['Preview']).toMatchObject({
      ok: true,
      detail: expect.stringMatching(new RegExp(`^export ${exp.id}: the next run would read 12 rows`)),
    });
    expect(c['Preview']!.detail).toMatch(/nothing was sent/);
    expect(c['Customer Insights storage']!.detail).toMatch(/reached: \d+ CI export folder/);
    expect(c['Timer and queue worker']).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/not registered: exportWorkerPoison/),
    });
    const report = formatSmoke(host.url, checks);
    expect(report).toMatch(/^Smoke check of http:\/\/127\.0\.0\.1:\d+\n/);
    expect(report).toMatch(/\n {2}works {3}Preview: /);
    expect(report).toMatch(/\n {2}FAILS {3}Easy Auth: /);
    expect(report).toMatch(/2 check\(s\) failed: see docs\/deploy\.md/);
    expect(report).not.toContain('smoke-test-key');
  }, 120_000);

  it('without sign-in: says the token was refused, and skips what only an Admin may see', async () => {
    const checks = byName(await runSmoke({ app: host.url, headers: {}, functions: null }));
    expect(checks['The app answers']!.ok).toBe(true);
    expect(checks['Sign-in']).toMatchObject({ ok: false, detail: expect.stringMatching(/did not accept your token \(401\)/) });
    expect(checks['Easy Auth']).toMatchObject({ ok: null, detail: expect.stringMatching(/only an Admin/) });
    expect(checks['Timer and queue worker']).toMatchObject({ ok: null, detail: expect.stringMatching(/--resource-group/) });
  }, 60_000);

  it('an app that does not answer is reported as such', async () => {
    const checks = await runSmoke({ app: 'http://127.0.0.1:9', headers: {}, functions: null });
    expect(byName(checks)['The app answers']).toMatchObject({ ok: false, detail: expect.stringMatching(/no answer/) });
  });
});
