// The export page's Braze proof panel in a real Chromium, against the local host on Azurite and the
// Braze sandbox: the filter to create in Braze and the proof segment's ID saved from the panel,
// Verify now finding no drift, then a drift made in the sandbox found and repaired from the panel
// (its cost asked first), and a Viewer's read-only panel; axe-core on each state.
import { BlobServiceClient } from '@azure/storage-blob';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePrincipal } from '../../shared/auth';
import { claimAzurite, type TestStorage } from '../helpers/azurite';
import { BrazeSandbox } from '../../scripts/braze-sandbox';
import { SAMPLE_CONTAINER, SAMPLE_FOLDER, SAMPLE_MATCHING, SAMPLE_SEGMENTS, uploadSampleExport } from '../../scripts/sample-data';
import { launchChromium, screenshot, seriousViolations } from '../helpers/browser';
import { testEnv } from '../helpers/app';
import { startHostProcess, type HostProcess } from '../helpers/host-process';

let azurite: TestStorage;
let sandbox: BrazeSandbox;
let host: HostProcess;
let browser: Browser;
let exportId: string;
const pageErrors: string[] = [];

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${host.url}/api/${path}`, {
    method,
    headers: { 'x-ms-client-principal': encodePrincipal('Admin'), 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await res.json()) as any;
};

async function ended(runId: string): Promise<any> {
  for (;;) {
    const run = await api('GET', `runs/${runId}`);
    if (!['queued', 'running'].includes(run.status)) return run;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function pageAs(role: 'Admin' | 'Viewer'): Promise<Page> {
  const context = await browser.newContext({
    extraHTTPHeaders: { 'x-ms-client-principal': encodePrincipal(role, `${role.toLowerCase()}@contoso.com`) },
    viewport: { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${host.url}/#/exports/${exportId}`);
  await page.getByRole('heading', { name: 'Braze proof' }).waitFor();
  return page;
}

beforeAll(async () => {
  azurite = await claimAzurite();
  sandbox = new BrazeSandbox();
  await sandbox.start();
  await uploadSampleExport(BlobServiceClient.fromConnectionString(azurite.connectionString));
  host = await startHostProcess({
    ...testEnv(azurite.connectionString),
    SCHEDULED_REFRESH_SCHEDULE: '0 0 0 1 1 *',
    VERIFY_POLL_SECONDS: '0.2',
  });
  browser = await launchChromium();
  const connection = await api('POST', 'connections', {
    displayName: 'Sandbox',
    restEndpoint: sandbox.url,
    apiKey: 'sandbox-key',
    consent: true,
  });
  const exp = await api('POST', 'exports', {
    name: 'Proof me',
    connectionId: connection.id,
    brazeSegmentApiId: '0000-0000-0000',
    source: { container: SAMPLE_CONTAINER, folder: SAMPLE_FOLDER },
    segments: [...SAMPLE_SEGMENTS],
    matching: SAMPLE_MATCHING,
    schedule: { enabled: false },
  });
  exportId = exp.id;
  expect((await ended((await api('POST', `exports/${exportId}/run`)).runId)).status).toBe('succeeded');
  sandbox.exports.define({
    id: 'ci-proof',
    filters: SAMPLE_SEGMENTS.map((s) => ({ attribute: '0000-0000-0000', includes: s })),
  });
}, 180_000);

afterAll(async () => {
  expect(pageErrors).toEqual([]);
  await browser?.close();
  await host?.stop();
  await sandbox?.stop();
  await azurite?.stop();
});

describe('the Braze proof panel', () => {
  it('shows the Braze segment to create, and saves its ID', async () => {
    const page = await pageAs('Admin');
    const recipe = page.locator('#proof-recipe');
    await expect.poll(() => recipe.textContent()).toContain('Custom attribute 0000-0000-0000 includes value HighValueSegment');
    expect(await recipe.textContent()).toContain('OR');
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByLabel('Proof segment API identifier').fill('ci-proof');
    await page.getByRole('button', { name: 'Save proof segment' }).click();
    await page.getByText('Proof segment: ci-proof').waitFor();
    await page.getByText('Not verified yet.').waitFor();
    await page.context().close();
  }, 60_000);

  it('Verify now finds no drift; a drift made in Braze is found, repaired from the panel, and gone', async () => {
    const page = await pageAs('Admin');
    const panel = page.locator('section.proof');
    await panel.getByRole('button', { name: 'Verify now' }).click();
    await panel
      .getByText(/^No drift: Braze holds exactly what the export last sent for all 300 profiles/)
      .waitFor({ timeout: 30_000 });
    // The page's "Current run" says what the verification found, not export figures.
    await page
      .locator('.live-section')
      .getByText(/^Verification succeeded: No drift/)
      .waitFor();
    expect(await seriousViolations(page)).toEqual([]);

    const user = sandbox.profileList().find((p) => p.identifier.external_id)!;
    sandbox.exports.edit(`external_id:${user.identifier.external_id}`, { first_name: 'Edited in Braze' });
    await panel.getByRole('button', { name: 'Verify now' }).click();
    await panel.getByText(/^Drift found: 0 missing, 0 extra, 1 stale, 0 unknown/).waitFor({ timeout: 30_000 });
    const staleRow = panel.getByRole('row', { name: /Stale/ });
    expect(await staleRow.getByRole('cell').first().textContent()).toBe('1');
    expect(await panel.getByRole('link', { name: /Download the drift report/ }).getAttribute('href')).toMatch(
      /^\/api\/runs\/.+\/drift$/,
    );
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'proof-drift');
    // The verification's own page shows what it found, not export figures.
    const verifyRun = (await api('GET', `exports/${exportId}/runs`)).value.find((r: any) => r.kind === 'verify');
    const runPage = await page.context().newPage();
    await runPage.goto(`${host.url}/#/runs/${verifyRun.id}`);
    await runPage.getByRole('heading', { name: 'What Braze holds' }).waitFor();
    expect(
      await runPage
        .getByRole('row', { name: /^Stale/ })
        .getByRole('cell')
        .first()
        .textContent(),
    ).toBe('1');
    expect(await seriousViolations(runPage)).toEqual([]);
    await runPage.close();

    await panel.getByRole('button', { name: 'Repair' }).click();
    const dialog = page.getByRole('dialog', { name: 'Repair the drift?' });
    await dialog.getByText(/sends 1 profiles again .* about 1 Braze requests/).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await dialog.getByRole('button', { name: 'Repair' }).click();
    await panel.getByText(/^Repaired by /).waitFor({ timeout: 30_000 });
    const runs = (await api('GET', `exports/${exportId}/runs`)).value;
    const repairRun = await ended(runs.find((r: any) => r.repairOf).id);
    expect(repairRun.counts.sent).toBe(1);
    expect(sandbox.profiles.get(`external_id:${user.identifier.external_id}`)!.attributes.first_name).not.toBe('Edited in Braze');

    await panel.getByRole('button', { name: 'Verify now' }).click();
    await panel.getByText(/^No drift/).waitFor({ timeout: 30_000 });
    await page.context().close();
  }, 120_000);

  it('a Viewer sees the last verification, with no Verify now or Repair', async () => {
    const page = await pageAs('Viewer');
    const panel = page.locator('section.proof');
    await panel.getByText(/^No drift/).waitFor();
    expect(await panel.getByRole('button').count()).toBe(0);
    expect(await seriousViolations(page)).toEqual([]);
    await page.context().close();
  }, 60_000);
});
