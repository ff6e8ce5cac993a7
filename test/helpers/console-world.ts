// The console in a real Chromium for a browser test file: Azurite storage, a Braze sandbox, the
// app under the local host, the sample CI export, one Braze connection, and small helpers to
// call the API as an Admin and open pages as any role. Each file calls useConsoleWorld() once.
import { BlobServiceClient } from '@azure/storage-blob';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { BrazeSandbox } from '../../scripts/braze-sandbox';
import { SAMPLE_CONTAINER, SAMPLE_FOLDER, SAMPLE_MATCHING, SAMPLE_SEGMENTS, uploadSampleExport } from '../../scripts/sample-data';
import { encodePrincipal } from '../../shared/auth';
import { testEnv } from './app';
import { claimAzurite, type TestStorage } from './azurite';
import { launchChromium, seriousViolations } from './browser';
import { startHostProcess, type HostProcess } from './host-process';

export let azurite: TestStorage;
export let sandbox: BrazeSandbox;
export let host: HostProcess;
export let browser: Browser;
export let connectionId: string;
const pageErrors: string[] = [];

const ADMIN = { 'x-ms-client-principal': encodePrincipal('Admin', 'admin@contoso.com') };

export async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${host.url}${path}`, {
    method,
    headers: { ...ADMIN, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export const definition = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  connectionId,
  brazeSegmentApiId: 'seg-high-value',
  source: { container: SAMPLE_CONTAINER, folder: SAMPLE_FOLDER },
  segments: [...SAMPLE_SEGMENTS],
  matching: SAMPLE_MATCHING,
  schedule: { enabled: false },
  ...extra,
});

export async function createExport(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await call('POST', '/api/exports', definition(name, extra));
  expect(r.status).toBe(201);
  return r.body.id;
}

export async function runToEnd(exportId: string): Promise<any> {
  const r = await call('POST', `/api/exports/${exportId}/run`, {});
  expect(r.status).toBe(202);
  for (;;) {
    const run = (await call('GET', `/api/runs/${r.body.runId}`)).body;
    if (!['queued', 'running'].includes(run.status)) return run;
    await new Promise((res) => setTimeout(res, 200));
  }
}

export const as = async (
  role: string,
  viewport = { width: 1280, height: 900 },
): Promise<{ context: BrowserContext; page: Page }> => {
  const context = await browser.newContext({
    extraHTTPHeaders: { 'x-ms-client-principal': encodePrincipal(role, `${role.toLowerCase()}@contoso.com`) },
    viewport,
  });
  const page = await context.newPage();
  page.on('dialog', (d) => void d.accept());
  page.on('pageerror', (e) => pageErrors.push(e.message));
  return { context, page };
};

export async function expectAccessible(page: Page): Promise<void> {
  expect(await seriousViolations(page)).toEqual([]);
}

/** `hostEnv`: more settings for the app under test. */
export function useConsoleWorld(hostEnv: Record<string, string> = {}): void {
  beforeAll(async () => {
    pageErrors.length = 0; // another file's, when files share a worker (vitest.config.ts)
    azurite = await claimAzurite();
    sandbox = new BrazeSandbox({ segments: [{ id: 'seg-high-value', name: 'High value (from CI)' }] });
    await sandbox.start();
    await uploadSampleExport(BlobServiceClient.fromConnectionString(azurite.connectionString));
    host = await startHostProcess({
      ...testEnv(azurite.connectionString),
      SCHEDULED_REFRESH_SCHEDULE: '0 0 0 1 1 *',
      ...hostEnv,
    });
    browser = await launchChromium();
    const c = await call('POST', '/api/connections', {
      displayName: 'Braze sandbox',
      restEndpoint: sandbox.url,
      apiKey: 'sandbox-key',
      allowContributors: true,
      consent: true,
    });
    expect(c.status).toBe(201);
    connectionId = c.body.id;
  }, 120_000);

  afterAll(async () => {
    expect(pageErrors).toEqual([]);
    await browser?.close();
    await host?.stop();
    await sandbox?.stop();
    await azurite?.stop();
  });
}
