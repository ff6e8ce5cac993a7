// The web console in a real Chromium, against the local host on Azurite and the Braze sandbox:
// a user's whole path (connection → export from discovered columns → preview → run → progress →
// rejected report), a Viewer's read-only view, inline field errors, markup shown as text, and
// no serious accessibility violation on any page.
import { readFileSync } from 'node:fs';
import { BlobServiceClient } from '@azure/storage-blob';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePrincipal } from '../../shared/auth';
import { claimAzurite, type TestStorage } from '../helpers/azurite';
import { BrazeSandbox } from '../../scripts/braze-sandbox';
import { SAMPLE_CONTAINER, SAMPLE_FOLDER, SAMPLE_MATCHING, SAMPLE_SEGMENTS, uploadSampleExport } from '../../scripts/sample-data';
import { committedScreenshot, launchChromium, screenshot, seriousViolations } from '../helpers/browser';
import { rows, writeCiExport } from '../helpers/ci-export';
import { testEnv } from '../helpers/app';
import { startHostProcess, type HostProcess } from '../helpers/host-process';

const XSS = '<img src=x onerror="window.__xss=1">';
const BRAZE_SEGMENTS = [
  { id: 'seg-high-value', name: 'High value (from CI)' },
  { id: 'seg-churn', name: 'Churn risk' },
];

let azurite: TestStorage;
let sandbox: BrazeSandbox;
let host: HostProcess;
let browser: Browser;
let xssFolder: { container: string; folder: string };
/** Script errors on any page: there must be none. */
const pageErrors: string[] = [];

const as = async (role: 'Admin' | 'Viewer'): Promise<{ context: BrowserContext; page: Page }> => {
  const context = await browser.newContext({
    extraHTTPHeaders: { 'x-ms-client-principal': encodePrincipal(role, `${role.toLowerCase()}@contoso.com`) },
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  page.on('dialog', (d) => void d.accept());
  page.on('pageerror', (e) => pageErrors.push(e.message));
  return { context, page };
};

beforeAll(async () => {
  azurite = await claimAzurite();
  sandbox = new BrazeSandbox({ segments: BRAZE_SEGMENTS });
  await sandbox.start();
  const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
  await uploadSampleExport(blobs);
  // A CI export whose segment name is markup: it must show as text and run nothing.
  xssFolder = await writeCiExport(blobs, [{ segment: XSS, partitions: [rows(3)] }], { folder: 'CustomerInsights_xss/Export' });
  host = await startHostProcess({ ...testEnv(azurite.connectionString), SCHEDULED_REFRESH_SCHEDULE: '0 0 0 1 1 *' });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  expect(pageErrors).toEqual([]);
  await browser?.close();
  await host?.stop();
  await sandbox?.stop();
  await azurite?.stop();
});

const connectionIds = async (page: Page): Promise<string[]> =>
  (await (await page.request.get(`${host.url}/api/connections`)).json()).value.map((c: any) => c.id);

async function expectAccessible(page: Page): Promise<void> {
  expect(await seriousViolations(page)).toEqual([]);
}

describe('the console in Chromium', () => {
  let exportId: string;

  it('is served at / with a strict Content-Security-Policy, its script from the app itself', async () => {
    const res = await fetch(`${host.url}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc="\/console\/)/); // no inline script
    expect(html).not.toMatch(/https?:\/\//); // nothing from elsewhere
    expect((await fetch(`${host.url}/api/no-such-route`)).status).toBe(404);
  });

  it('an Admin creates a connection (a bad field is shown inline; a markup name stays text)', async () => {
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/connections`);
    await page.getByRole('heading', { name: 'Connections' }).waitFor();
    await page.getByLabel('Display name').fill(`Sandbox ${XSS}`);
    await page.getByLabel('REST endpoint').fill(sandbox.url);
    await page.getByLabel('REST API key (users.track permission)').fill('sandbox-key');
    await page.getByLabel('Contributors may create exports on this connection').check();
    // Braze proof's container: a name Azure refuses is said beside the field as it is typed.
    const container = page.getByLabel('Braze export container (optional)');
    await container.fill('Braze_Exports');
    await container.blur();
    await page
      .locator('[data-path="exportContainer"] .field-error')
      .getByText(/container name/)
      .waitFor();
    await container.fill('braze-exports');
    // No consent yet: the API's 400 shows beside the consent box.
    await page.getByRole('button', { name: 'Create connection' }).click();
    const consentError = page.locator('[data-path="consent"] .field-error');
    await consentError.waitFor();
    expect(await consentError.textContent()).toMatch(/.+/);
    await screenshot(page, 'connection-field-error');
    await page.getByLabel(/I agree that profile data/).check();
    await page.getByRole('button', { name: 'Create connection' }).click();
    await page.getByRole('cell', { name: `Sandbox ${XSS}` }).waitFor();
    expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
    expect(await page.locator('main img').count()).toBe(0);
    const created = await page.evaluate(() => fetch('/api/connections').then((r) => r.json()));
    expect(created.value.find((c: any) => c.displayName.startsWith('Sandbox <img')).exportContainer).toEqual({
      container: 'braze-exports',
    });
    await page.getByRole('button', { name: 'Test key' }).click();
    await page.getByText(/valid/i).first().waitFor();
    await screenshot(page, 'connections');
    await expectAccessible(page);
    await context.close();
  });

  it('an Admin creates an export from the discovered folder, segments, columns and Braze segments', async () => {
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/new`);
    await page.getByRole('heading', { name: 'New export' }).waitFor();
    await page
      .getByLabel('CI export folder (holds model.json)')
      .selectOption({ label: `${SAMPLE_CONTAINER} / ${SAMPLE_FOLDER}` });
    for (const segment of SAMPLE_SEGMENTS) await page.getByLabel(new RegExp(`^${segment} — `)).check();
    // Columns come from model.json: the mappings are dropdowns of them.
    await page.getByLabel('CI profile ID column').selectOption(SAMPLE_MATCHING.profileId);
    await page.getByLabel('E-mail column').selectOption(SAMPLE_MATCHING.email);
    await page.getByLabel('Braze customer ID (external_id) column').selectOption(SAMPLE_MATCHING.brazeCustomerId);
    await page.getByLabel('Phone column').selectOption(SAMPLE_MATCHING.phone!);
    for (const [attribute, column] of Object.entries(SAMPLE_MATCHING.attributes)) {
      await page.getByRole('button', { name: 'Add attribute' }).click();
      await page.getByLabel('Braze attribute name').last().fill(attribute);
      await page.getByLabel('CI column').last().selectOption(column);
    }
    // The workspace's segments, by name.
    await page.getByLabel('Braze segment', { exact: true }).selectOption('seg-high-value');
    await page.getByText('Chosen: High value (from CI) (seg-high-value)').waitFor();
    // Without a name the API says which field is wrong, and the page shows it there.
    await page.getByRole('button', { name: 'Create export' }).click();
    const nameError = page.locator('[data-path="name"] .field-error');
    await nameError.waitFor();
    expect(await page.getByLabel('Export name').getAttribute('aria-invalid')).toBe('true');
    await screenshot(page, 'export-form');
    await expectAccessible(page);
    await page.getByLabel('Export name').fill('Sample segments to Braze');
    await page.getByRole('button', { name: 'Create export' }).click();
    await page.getByRole('heading', { name: 'Sample segments to Braze' }).waitFor();
    exportId = page.url().split('#/exports/')[1]!;
    expect(exportId).toMatch(/^[0-9a-f-]{36}$/);
    await context.close();
  });

  it('previews the export (sending nothing), runs it, watches it succeed and downloads the rejected rows', async () => {
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/${exportId}`);
    await page.getByRole('heading', { name: 'Sample segments to Braze' }).waitFor();
    const requestsBefore = sandbox.stats.requests;
    const previewAnswer = page.waitForResponse((r) => r.url().endsWith(`/api/exports/${exportId}/preview`));
    await page.getByRole('button', { name: 'Preview' }).click();
    const preview = await (await previewAnswer).json();
    await page.locator('#preview').waitFor();
    expect(await page.getByRole('row', { name: /^New profiles/ }).textContent()).toContain(
      preview.profiles.new.toLocaleString('en-US'),
    );
    expect(preview.profiles.new).toBeGreaterThan(0);
    expect(sandbox.stats.requests).toBe(requestsBefore);
    await screenshot(page, 'export-preview');
    await expectAccessible(page);

    // Slow answers, so the run is seen going.
    sandbox.setFaults({ slowMs: 1500 });
    await page.getByRole('button', { name: 'Run now' }).click();
    await page.locator('#run-progress').waitFor();
    await screenshot(page, 'export-running');
    await page.getByText('No run is going.').waitFor({ timeout: 30_000 });
    sandbox.setFaults({ slowMs: 0 });
    const firstRun = page.locator('section[aria-labelledby="history-title"] tbody tr').first();
    expect(await firstRun.locator('.badge').textContent()).toBe('succeeded');
    await screenshot(page, 'export-detail');
    await committedScreenshot(page, 'export-detail'); // the README's (with UPDATE_SCREENSHOTS=1)
    await expectAccessible(page);

    // The run did what the preview said.
    const runs = (await (await page.request.get(`${host.url}/api/exports/${exportId}/runs`)).json()).value;
    const run = runs[0];
    expect(run.counts.profiles).toBe(preview.profiles.total);
    expect(run.counts.unchanged).toBe(preview.profiles.unchanged);
    expect(run.counts.newProfiles).toBe(preview.profiles.new);
    expect(run.counts.sent + run.counts.failed + (run.counts.rejected - preview.rejectedRows.total)).toBe(
      preview.profiles.new + preview.profiles.changed,
    );
    expect(run.requests.sent).toBe(preview.requests);

    const download = page.waitForEvent('download');
    await firstRun.getByRole('link', { name: 'Rejected rows (CSV)' }).click();
    const csv = readFileSync((await (await download).path())!, 'utf8');
    expect(csv.split('\n')[0]).toMatch(/reason/i);
    expect(csv).toMatch(/no usable identifier/);

    // The run's page says when Braze first heard from it.
    expect(run.timings.firstRequestSeconds).toBeGreaterThanOrEqual(0);
    expect(run.timings.firstRequestSeconds).toBeLessThanOrEqual((Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000);
    await page.goto(`${host.url}/#/runs/${run.id}`);
    const requests = page.locator('dt', { hasText: 'Braze requests' }).locator('xpath=following-sibling::dd[1]');
    expect(await requests.textContent()).toMatch(/rate-limited; the first (within a second|after \d+ s)$/);
    await context.close();
  });

  it('shows a markup segment name as text and runs nothing', async () => {
    const { context, page } = await as('Admin');
    const connections = (await (await page.request.get(`${host.url}/api/connections`)).json()).value;
    const created = await page.request.post(`${host.url}/api/exports`, {
      data: {
        name: XSS,
        connectionId: connections[0].id,
        brazeSegmentApiId: 'seg-churn',
        source: xssFolder,
        segments: [XSS],
        matching: { profileId: 'CustomerId', email: 'PrimaryEmail', brazeCustomerId: 'BrazeUserId' },
        schedule: { enabled: false },
      },
      headers: { 'content-type': 'application/json' },
    });
    expect(created.status()).toBe(201);
    const { id } = await created.json();
    await page.goto(`${host.url}/#/exports`);
    await page.getByRole('link', { name: XSS }).waitFor();
    await page.getByRole('link', { name: XSS }).click();
    await page.getByRole('heading', { name: XSS }).waitFor();
    await page.getByText(XSS, { exact: true }).first().waitFor();
    expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
    expect(await page.locator('main img').count()).toBe(0);
    await page.goto(`${host.url}/#/exports/${id}/edit`);
    await page.getByLabel(new RegExp(`^${XSS.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} — `)).waitFor();
    expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
    await context.close();
  });

  it('shows the limit Braze reported on the run, warns about a budget above it, and sets the hourly cap', async () => {
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/connections`);
    const limits = page.locator('td[data-label="Limits"]').first();
    await limits.getByText(/Braze reports: 3,000 per window/).waitFor();
    await page.getByRole('button', { name: 'Limits' }).first().click();
    await page.getByLabel(/^Request budget for/).fill('5000');
    await page.getByLabel(/^Hourly request cap for/).fill('fifty');
    await page.getByRole('button', { name: 'Save limits' }).click();
    await page.locator('form.inline-form [data-path="hourlyRequestCap"] .field-error').waitFor();
    await page.getByLabel(/^Hourly request cap for/).fill('50000');
    await page.getByRole('button', { name: 'Save limits' }).click();
    await limits.getByText('Hourly cap: 50,000 requests, 0 used this hour').waitFor();
    expect(await limits.locator('.warning').textContent()).toMatch(
      /request budget \(5,000 requests per 3 s\) is above the limit Braze reported/,
    );
    await screenshot(page, 'connection-limits');
    await expectAccessible(page);
    await page.request.patch(`${host.url}/api/connections/${(await connectionIds(page))[0]}`, {
      data: { requestBudget: 1000 },
    });
    await context.close();
  });

  it('duplicates an export, deletes the copy, and shows which exports block deleting a connection', async () => {
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/${exportId}`);
    await page.getByRole('button', { name: 'Duplicate' }).click();
    await page.waitForURL((u) => !u.hash.endsWith(exportId) && /#\/exports\/[0-9a-f-]{36}$/.test(u.hash));
    await page.getByRole('heading', { name: /Sample segments to Braze/ }).waitFor();
    const copyId = page.url().split('#/exports/')[1]!;
    await page.getByText('off (on demand only)').waitFor(); // a copy starts with its schedule off
    await page.getByRole('button', { name: 'Delete' }).click();
    // Never run: nothing reached Braze, and the question says so.
    const dialog = page.getByRole('dialog');
    await dialog.getByText('Nothing from this export has reached Braze yet').waitFor();
    await dialog.getByRole('button', { name: 'Delete export' }).click();
    await page.getByRole('heading', { name: 'Exports' }).waitFor();
    expect((await page.request.get(`${host.url}/api/exports/${copyId}`)).status()).toBe(404);
    expect(await page.locator(`a[href="#/exports/${copyId}"]`).count()).toBe(0);

    await page.goto(`${host.url}/#/connections`);
    await page.getByRole('button', { name: 'Delete' }).first().click();
    const refusal = page.locator('.notice.error');
    await refusal.waitFor();
    expect(await refusal.getByRole('link', { name: 'Sample segments to Braze' }).count()).toBe(1);
    await context.close();
  });

  it('a Viewer sees exports and runs but no write control', async () => {
    const { context, page } = await as('Viewer');
    await page.goto(`${host.url}/`);
    await page.getByRole('link', { name: 'Sample segments to Braze' }).waitFor();
    expect(await page.getByRole('link', { name: 'New export' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Connections' }).isVisible()).toBe(false);
    await screenshot(page, 'exports');
    await committedScreenshot(page, 'exports');
    await expectAccessible(page);
    await page.getByRole('link', { name: 'Sample segments to Braze' }).click();
    await page.getByRole('heading', { name: 'Run history' }).waitFor();
    // No write control: the only button copies the Braze segment recipe.
    expect(await page.locator('main button').allTextContents()).toEqual(['Copy filter recipe']);
    expect(await page.getByRole('link', { name: 'Edit' }).count()).toBe(0);
    expect(await page.locator('section[aria-labelledby="history-title"] tbody tr').count()).toBeGreaterThan(0);
    await screenshot(page, 'export-detail-viewer');
    await expectAccessible(page);
    await context.close();
  });
});
