// Issue 29 in a real Chromium: the console's traps (each test here failed on the console before
// the fix), costs and consequences shown before the click, live runs people can follow (and
// cancel from the keyboard), a page per run, and the narrow list. axe runs on every state visited.
import { BlobServiceClient } from '@azure/storage-blob';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePrincipal } from '../../shared/auth';
import { startAzurite, type Azurite } from '../../scripts/azurite';
import { BrazeSandbox } from '../../scripts/braze-sandbox';
import { SAMPLE_CONTAINER, SAMPLE_FOLDER, SAMPLE_MATCHING, SAMPLE_SEGMENTS, uploadSampleExport } from '../../scripts/sample-data';
import { committedScreenshot, launchChromium, seriousViolations } from '../helpers/browser';
import { testEnv } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { startHostProcess, type HostProcess } from '../helpers/host-process';

let azurite: Azurite;
let sandbox: BrazeSandbox;
let host: HostProcess;
let browser: Browser;
let connectionId: string;
const pageErrors: string[] = [];

const ADMIN = { 'x-ms-client-principal': encodePrincipal('Admin', 'admin@contoso.com') };

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${host.url}${path}`, {
    method,
    headers: { ...ADMIN, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const definition = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  connectionId,
  brazeSegmentApiId: 'seg-high-value',
  source: { container: SAMPLE_CONTAINER, folder: SAMPLE_FOLDER },
  segments: [...SAMPLE_SEGMENTS],
  matching: SAMPLE_MATCHING,
  schedule: { enabled: false },
  ...extra,
});

async function createExport(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await call('POST', '/api/exports', definition(name, extra));
  expect(r.status).toBe(201);
  return r.body.id;
}

async function runToEnd(exportId: string): Promise<any> {
  const r = await call('POST', `/api/exports/${exportId}/run`, {});
  expect(r.status).toBe(202);
  for (;;) {
    const run = (await call('GET', `/api/runs/${r.body.runId}`)).body;
    if (!['queued', 'running'].includes(run.status)) return run;
    await new Promise((res) => setTimeout(res, 200));
  }
}

const as = async (role: string, viewport = { width: 1280, height: 900 }): Promise<{ context: BrowserContext; page: Page }> => {
  const context = await browser.newContext({
    extraHTTPHeaders: { 'x-ms-client-principal': encodePrincipal(role, `${role.toLowerCase()}@contoso.com`) },
    viewport,
  });
  const page = await context.newPage();
  page.on('dialog', (d) => void d.accept());
  page.on('pageerror', (e) => pageErrors.push(e.message));
  return { context, page };
};

async function expectAccessible(page: Page): Promise<void> {
  expect(await seriousViolations(page)).toEqual([]);
}

beforeAll(async () => {
  azurite = await startAzurite();
  sandbox = new BrazeSandbox({ segments: [{ id: 'seg-high-value', name: 'High value (from CI)' }] });
  await sandbox.start();
  await uploadSampleExport(BlobServiceClient.fromConnectionString(azurite.connectionString));
  host = await startHostProcess({ ...testEnv(azurite.connectionString), SCHEDULED_REFRESH_SCHEDULE: '0 0 0 1 1 *' });
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

describe('trap 1: the schedule checkbox', () => {
  it('is on the export form, and switches a duplicate (schedule off) on', async () => {
    const id = await createExport('Schedule me');
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/${id}/edit`);
    const box = page.getByRole('checkbox', { name: 'Run on every scheduled refresh that finds a newer snapshot' });
    await box.waitFor({ timeout: 5000 });
    expect(await box.isVisible()).toBe(true);
    expect(await box.isChecked()).toBe(false);
    await box.check();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('heading', { name: 'Schedule me', exact: true }).waitFor({ timeout: 5000 });
    expect((await call('GET', `/api/exports/${id}`)).body.schedule.enabled).toBe(true);
    await context.close();
  });
});

describe('trap 2: a detached export', () => {
  it('stays detached when edited: the form shows no connection and saving does not pick the first one', async () => {
    const id = await createExport('Detached one');
    expect((await call('POST', `/api/exports/${id}/detach?keepBrazeData=true`, {})).status).toBe(200);
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/${id}/edit`);
    await page.getByRole('heading', { name: 'Edit Detached one' }).waitFor();
    await page.getByLabel('CI profile ID column').waitFor();
    expect(await page.getByLabel('Braze connection').inputValue()).toBe('');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.locator('[data-path="connectionId"] .field-error').waitFor({ timeout: 5000 });
    expect(await page.locator('[data-path="connectionId"] .field-error').textContent()).toMatch(/detached/i);
    await expectAccessible(page);
    const after = (await call('GET', `/api/exports/${id}`)).body;
    expect(after.status).toBe('inactive');
    expect(after.connectionId).toBeNull();
    await context.close();
  });
});

describe('trap 3: deleting an export whose membership is in Braze', () => {
  it('says it is withdrawing from Braze, follows the cleanup run, and returns to the list', async () => {
    const id = await createExport('Delete me');
    expect((await runToEnd(id)).status).toMatch(/succeeded/);
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/${id}`);
    await page.getByRole('heading', { name: 'Delete me' }).waitFor();
    sandbox.setFaults({ slowMs: 1200 });
    await page.getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor({ timeout: 5000 });
    expect(await dialog.textContent()).toContain('seg-high-value'); // the attribute cleared
    await expectAccessible(page);
    await dialog.getByRole('button', { name: 'Delete export' }).click();
    await page.getByText('Deleting — withdrawing from Braze').first().waitFor({ timeout: 5000 });
    expect(await page.getByRole('button', { name: 'Run now' }).count()).toBe(0);
    // Focus is not dropped to the page with the button that asked.
    await page.waitForFunction(() => document.activeElement?.classList.contains('cleanup'), undefined, { timeout: 3000 });
    await expectAccessible(page);
    sandbox.setFaults({ slowMs: 0 });
    await page.getByRole('heading', { name: 'Exports' }).waitFor({ timeout: 20_000 });
    await page.getByText(/Delete me.*deleted/).waitFor();
    expect((await call('GET', `/api/exports/${id}`)).status).toBe(404);
    await context.close();
  });

  it('shows how to retry when the cleanup run failed', async () => {
    const id = await createExport('Delete me later');
    expect((await runToEnd(id)).status).toMatch(/succeeded/);
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/${id}`);
    await page.getByRole('heading', { name: 'Delete me later' }).waitFor();
    sandbox.setFaults({ refuseEveryRequest: 'workspace is read-only' });
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete export' }).click();
    await page
      .getByText(/withdrawing .* failed/i)
      .first()
      .waitFor({ timeout: 20_000 });
    await expectAccessible(page);
    sandbox.setFaults({ refuseEveryRequest: undefined });
    await page.getByRole('button', { name: 'Retry deleting' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete export' }).click();
    await page.getByRole('heading', { name: 'Exports' }).waitFor({ timeout: 20_000 });
    expect((await call('GET', `/api/exports/${id}`)).status).toBe(404);
    await context.close();
  });

  it('follows an export the API reports as "deleting" until it answers 404', async () => {
    const { context, page } = await as('Admin');
    const exp = {
      ...definition('Being deleted'),
      id: 'x-deleting',
      status: 'deleting',
      membership: { format: 'list', booleanPrefix: 'ci_segment_' },
    };
    const cleanup = {
      id: 'run-cleanup',
      exportId: 'x-deleting',
      kind: 'cleanup',
      then: 'delete',
      trigger: 'manual',
      status: 'running',
      phase: 'sending',
      counts: { rowsRead: 0, profiles: 10, sent: 3 },
      requests: { sent: 1, retried: 0, rateLimited: 0 },
      errors: [],
      warnings: [],
    };
    let gets = 0;
    await page.route('**/api/exports/x-deleting', (r) =>
      ++gets < 3
        ? r.fulfill({ json: exp })
        : r.fulfill({ status: 404, json: { error: { code: 'not_found', message: 'Export was not found' } } }),
    );
    await page.route('**/api/exports/x-deleting/runs', (r) => r.fulfill({ json: { value: [cleanup] } }));
    await page.route('**/api/runs/run-cleanup', (r) => r.fulfill({ json: cleanup }));
    await page.goto(`${host.url}/#/exports/x-deleting`);
    await page.getByText('Deleting — withdrawing from Braze').first().waitFor({ timeout: 5000 });
    await page.getByRole('heading', { name: 'Exports' }).waitFor({ timeout: 10_000 });
    await context.close();
  });
});

describe('traps 4 and 5: a live run', () => {
  it('shows progress from requests against the preview, a growing "sent" and an ETA; keeps keyboard focus on Cancel run', async () => {
    // A connection paced at 1 request per 3 s: the run's few requests take seconds, one by one.
    const slow = await call('POST', '/api/connections', {
      displayName: 'Slow sandbox',
      restEndpoint: sandbox.url,
      apiKey: 'sandbox-key',
      requestBudget: 1,
      consent: true,
    });
    expect(slow.status).toBe(201);
    const id = await createExport('Watch me', { connectionId: slow.body.id, brazeSegmentApiId: 'seg-watch' });
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/${id}`);
    await page.getByRole('heading', { name: 'Watch me' }).waitFor();
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.locator('#preview').waitFor();
    await page.getByRole('button', { name: 'Run now' }).click();
    const bar = page.locator('#run-progress');
    await bar.waitFor({ timeout: 10_000 });
    // Progress moves while requests go out (it used to sit at "0 of 1" bucket until the end).
    await page.waitForFunction(
      () => {
        const p = document.querySelector<HTMLProgressElement>('#run-progress');
        return !!p && p.hasAttribute('value') && p.value > 0 && p.value < p.max;
      },
      undefined,
      { timeout: 15_000 },
    );
    await page.getByText(/requests? of ~\d+/).waitFor();
    // "sent" grows with the requests, not only when the run's books are written.
    await page.getByText(/ · sent (≈ )?[1-9]/).waitFor();
    await page
      .getByText(/left$|about .* left/)
      .first()
      .waitFor();
    await expectAccessible(page);
    // One polite status line on the page.
    expect(await page.locator('main [aria-live="polite"], main [role="status"]').count()).toBe(1);
    // Keyboard: focus Cancel run, live updates go on, focus stays.
    const cancel = page.getByRole('button', { name: 'Cancel run' });
    await cancel.focus();
    await page.waitForTimeout(2500);
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Cancel run');
    await page.keyboard.press('Enter');
    await page
      .getByText(/not sent — cancelled|cancel came too late/i)
      .first()
      .waitFor({ timeout: 20_000 });
    sandbox.setFaults({ slowMs: 0 });
    await expectAccessible(page);
    await context.close();
  }, 60_000);
});

describe('trap 6: the smaller ones', () => {
  it('a Viewer opening #/exports/new is told they cannot create exports', async () => {
    const { context, page } = await as('Viewer');
    await page.goto(`${host.url}/#/exports/new`);
    await page.getByText(/cannot create exports/).waitFor({ timeout: 5000 });
    expect(await page.getByText('Export was not found').count()).toBe(0);
    expect(await page.locator('#nav-exports').getAttribute('aria-current')).toBe('page');
    await context.close();
  });

  it('a signed-in user without a role is told to ask for one, not offered a sign-in loop', async () => {
    const { context, page } = await as('NoSuchRole');
    await page.goto(`${host.url}/`);
    await page.getByText(/no role in this app/).waitFor({ timeout: 5000 });
    expect(await page.getByRole('link', { name: 'Sign in' }).count()).toBe(0);
    await context.close();
  });

  it('connection form: every error at once, announced on the first bad field, cleared when fixed; the key hint reads once', async () => {
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/connections`);
    await page.getByRole('heading', { name: 'Connections' }).waitFor();
    expect(await page.getByRole('cell', { name: '……' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Create connection' }).click();
    for (const path of ['displayName', 'restEndpoint', 'apiKey', 'consent'])
      await page.locator(`[data-path="${path}"] .field-error:not([hidden])`).waitFor({ timeout: 3000 });
    expect(await page.evaluate(() => document.activeElement?.id)).toBe(await page.getByLabel('Display name').getAttribute('id'));
    await expectAccessible(page);
    await page.getByLabel('Display name').fill('Fixed');
    expect(await page.locator('[data-path="displayName"] .field-error:not([hidden])').count()).toBe(0);
    // A format mistake is named as soon as the field is left, and goes when mended.
    await page.getByLabel('REST endpoint').fill('rest iad-03.braze.com');
    await page.getByLabel('REST endpoint').press('Tab');
    const endpointError = page.locator('[data-path="restEndpoint"] .field-error');
    expect(await endpointError.textContent()).toMatch(/no spaces/);
    await page.getByLabel('REST endpoint').fill('rest.iad-03.braze.com');
    expect(await endpointError.isVisible()).toBe(false);
    await context.close();
  });

  it('Edit sends If-Match: a save over someone else’s change is refused, not silently lost', async () => {
    const id = await createExport('Two editors');
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/${id}/edit`);
    await page.getByLabel('CI profile ID column').waitFor();
    expect((await call('PATCH', `/api/exports/${id}`, { name: 'Renamed elsewhere' })).status).toBe(200);
    await page.getByLabel('Export name').fill('Two editors, mine');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText(/changed since you opened it/).waitFor({ timeout: 5000 });
    expect((await call('GET', `/api/exports/${id}`)).body.name).toBe('Renamed elsewhere');
    await context.close();
  });

  it('warns when another export on the connection writes the same membership attribute', async () => {
    await createExport('Writes seg-high-value');
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/new`);
    await page.getByLabel('Braze segment', { exact: true }).selectOption('seg-high-value');
    await page
      .getByText(/also written by/)
      .first()
      .waitFor({ timeout: 5000 });
    await context.close();
  });

  it('long names without spaces do not widen the page; the expanded sample is accessible', async () => {
    const id = await createExport('N'.repeat(250));
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports`);
    await page.getByRole('link', { name: 'N'.repeat(250) }).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1280);
    await page.goto(`${host.url}/#/exports/${id}`);
    await page.getByRole('heading', { name: 'N'.repeat(250) }).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1280);
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.getByText(/^Sample objects/).click();
    await expectAccessible(page);
    await context.close();
  });
});

describe('costs and consequences before the click; a page per run; the list at 390 px', () => {
  let id: string;

  it('Full sync previews first and asks with its numbers', async () => {
    id = await createExport('Costs first');
    expect((await runToEnd(id)).status).toMatch(/succeeded/);
    const { context, page } = await as('Admin', { width: 1000, height: 760 });
    await page.goto(`${host.url}/#/exports/${id}`);
    await page.getByRole('heading', { name: 'Costs first' }).waitFor();
    const previewed = page.waitForRequest((r) => r.url().endsWith('/preview') && r.postDataJSON()?.fullSync === true);
    await page.getByRole('button', { name: 'Full sync' }).click();
    await previewed;
    const dialog = page.getByRole('dialog', { name: 'Run a full sync?' });
    await dialog.waitFor();
    expect(await dialog.textContent()).toMatch(/Re-sends [\d,]+ profiles ≈ [\d,]+ data points, [\d,]+ new to Braze — Continue\?/);
    await expectAccessible(page);
    await committedScreenshot(page, 'full-sync-confirmation', dialog);
    await dialog.getByRole('button', { name: 'Run full sync' }).click();
    await page.getByText('No run is going.').waitFor({ timeout: 20_000 });
    const runs = (await call('GET', `/api/exports/${id}/runs`)).body.value;
    expect(runs[0].fullSync).toBe(true);
    expect(runs).toHaveLength(2);
    await context.close();
  });

  it('shows what the export writes in Braze and a copyable segment filter', async () => {
    const { context, page } = await as('Admin', { width: 1000, height: 760 });
    await page.goto(`${host.url}/#/exports/${id}`);
    const box = page.getByRole('region', { name: 'In Braze' });
    await box.waitFor();
    for (const segment of SAMPLE_SEGMENTS)
      await box.getByText(`Custom attribute seg-high-value includes value ${segment}`).waitFor();
    await box.getByText('external_id', { exact: true }).waitFor();
    expect(await box.getByRole('button', { name: 'Copy filter recipe' }).count()).toBe(1);
    await committedScreenshot(page, 'export-in-braze', box);
    await context.close();
  });

  it('has a page per run: outcome, rows per segment, rejected rows inline with the download', async () => {
    const { context, page } = await as('Admin', { width: 900, height: 720 });
    await page.goto(`${host.url}/#/exports/${id}`);
    await page.locator('section[aria-labelledby="history-title"] tbody tr').last().getByRole('link').first().click();
    await page.getByRole('heading', { name: /^Run of / }).waitFor();
    await page.getByRole('rowheader', { name: 'HighValueSegment' }).waitFor();
    await page.getByRole('table', { name: /rejected rows$/ }).waitFor();
    expect(
      await page
        .getByRole('table', { name: /rejected rows$/ })
        .getByText(/no usable identifier/)
        .count(),
    ).toBeGreaterThan(0);
    expect(await page.getByRole('link', { name: 'Rejected rows (CSV)' }).count()).toBe(1);
    await expectAccessible(page);
    await committedScreenshot(page, 'run-page');
    await context.close();
  });

  it('Detach offers to keep the data in Braze, and then detaches at once', async () => {
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/${id}`);
    await page.getByRole('button', { name: 'Detach' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel(/^Withdraw it/).waitFor();
    expect(await dialog.getByLabel(/^Withdraw it/).isChecked()).toBe(true);
    await dialog.getByLabel(/^Keep the data in Braze/).check();
    await expectAccessible(page);
    const detached = page.waitForRequest((r) => r.url().includes('/detach?keepBrazeData=true'));
    await dialog.getByRole('button', { name: 'Detach export' }).click();
    await detached;
    await page.getByText('detached (no connection)').waitFor();
    expect((await call('GET', `/api/exports/${id}`)).body.status).toBe('inactive');
    await context.close();
  });

  it('the list at 390 px: cards, no sideways scrolling; search and the status filter narrow it', async () => {
    const { context, page } = await as('Admin', { width: 390, height: 844 });
    await page.goto(`${host.url}/#/exports`);
    await page.getByRole('heading', { name: 'Exports' }).waitFor();
    await page.getByLabel('Search').fill('Costs');
    await page.getByText(/^1 of \d+ exports$/).waitFor();
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Show').selectOption('inactive');
    await page.getByRole('link', { name: 'Costs first' }).waitFor();
    await page.getByLabel('Show').selectOption('');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await expectAccessible(page);
    await committedScreenshot(page, 'exports-390');
    await page.goto(`${host.url}/#/connections`);
    await page.getByRole('heading', { name: 'Connections' }).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    // The export form's attribute rows wrap instead of pushing the page sideways.
    await page.goto(`${host.url}/#/exports/${id}/edit`);
    await page.getByLabel('Braze attribute name').first().waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect((await page.getByLabel('CI column').first().boundingBox())!.width).toBeGreaterThan(140);
    await context.close();
  });
});

describe('mapping and first use', () => {
  it('the column pickers show types and narrow to a search; messages are human, as you type, and go when fixed', async () => {
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/new`);
    await page.getByRole('heading', { name: 'New export' }).waitFor();
    await page.getByRole('button', { name: 'Create export' }).click();
    const nameError = page.locator('[data-path="name"] .field-error');
    expect(await nameError.textContent()).toBe('A name is required.');
    expect(await page.locator('[data-path="segments"] .field-error').textContent()).toBe('Pick at least one CI segment.');
    await expectAccessible(page);
    await page.getByLabel('Export name').fill('Typed');
    expect(await nameError.isVisible()).toBe(false);
    await page
      .getByLabel('CI export folder (holds model.json)')
      .selectOption({ label: `${SAMPLE_CONTAINER} / ${SAMPLE_FOLDER}` });
    await page.getByLabel(new RegExp(`^${SAMPLE_SEGMENTS[0]} — `)).check();
    await page.getByLabel('Find a column').fill('mail');
    await page.getByText(/^\d+ of \d+ columns match “mail”/).waitFor();
    const visible = await page
      .getByLabel('E-mail column')
      .evaluate((s: HTMLSelectElement) => [...s.options].filter((o) => !o.hidden && o.value).map((o) => o.textContent));
    expect(visible.length).toBeGreaterThan(0);
    expect(visible.every((t) => /mail/i.test(t!) && / · /.test(t!))).toBe(true);
    await context.close();
  });

  it('the column list shows each column’s type and up to three masked sample values, narrowed by the search', async () => {
    const { context, page } = await as('Contributor');
    await page.goto(`${host.url}/#/exports/new`);
    await page.getByRole('heading', { name: 'New export' }).waitFor();
    await page
      .getByLabel('CI export folder (holds model.json)')
      .selectOption({ label: `${SAMPLE_CONTAINER} / ${SAMPLE_FOLDER}` });
    await page.getByLabel(new RegExp(`^${SAMPLE_SEGMENTS[0]} — `)).check();
    const list = page.locator('details.column-list');
    const email = list.getByRole('row', { name: new RegExp(`^${SAMPLE_MATCHING.email} `) });
    await email.waitFor();
    expect(await email.getByRole('cell').nth(1).textContent()).toBe('string');
    const samples = (await email.getByRole('cell').nth(2).textContent())!.split(', ');
    expect(samples.length).toBeGreaterThan(0);
    expect(samples.length).toBeLessThanOrEqual(3);
    // Masked as the preview masks: an address keeps its first character and domain, other text its first character.
    for (const s of samples) expect(s).toMatch(/^[^@\s•]•+(@[^@\s]+)?$/);
    expect(samples.some((s) => s.includes('@'))).toBe(true);
    // Masked: no e-mail address, phone number or ID of the snapshot is on the page.
    expect(await list.textContent()).not.toMatch(/[A-Za-z0-9][A-Za-z0-9._%+-]+@/);
    for (const column of ['CustomerId', 'BrazeUserId', 'Telephone']) {
      const cell = list
        .getByRole('row', { name: new RegExp(`^${column} `) })
        .getByRole('cell')
        .nth(2);
      expect(await cell.textContent()).not.toMatch(/\d\d/);
    }
    // Each matching picker shows its chosen column's samples.
    const chosen = page.locator('[data-path="matching.email"]').getByText(/^Samples \(masked\): /);
    expect(await chosen.textContent()).toBe(`Samples (masked): ${samples.join(', ')}`);
    await expectAccessible(page);
    await page.getByLabel('Find a column').fill('phone');
    await page.getByText(/^\d+ of \d+ columns match “phone”/).waitFor();
    const names = await list.locator('tbody tr td:first-child').allTextContents();
    expect(names.length).toBeGreaterThan(0);
    expect(names.every((n) => /phone/i.test(n))).toBe(true);
    await expectAccessible(page);
    await context.close();
  });

  it('“Preview draft” shows what a new export would do, and saves nothing; an edit is previewed against its sync state', async () => {
    const before = (await call('GET', '/api/exports')).body.value.length;
    const objectsBefore = sandbox.stats.objectsProcessed;
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/new`);
    await page.getByRole('heading', { name: 'New export' }).waitFor();
    // The form's own checks first: nothing is asked of the API with a field missing.
    await page.getByRole('button', { name: 'Preview draft' }).click();
    expect(await page.locator('[data-path="name"] .field-error').textContent()).toBe('A name is required.');
    await page.getByLabel('Export name').fill('Drafted, never saved');
    await page
      .getByLabel('CI export folder (holds model.json)')
      .selectOption({ label: `${SAMPLE_CONTAINER} / ${SAMPLE_FOLDER}` });
    for (const segment of SAMPLE_SEGMENTS) await page.getByLabel(new RegExp(`^${segment} — `)).check();
    await page.getByLabel('Braze segment', { exact: true }).selectOption('seg-high-value');
    const answer = page.waitForResponse((r) => r.url().endsWith('/api/exports/preview'));
    await page.getByRole('button', { name: 'Preview draft' }).click();
    const preview = await (await answer).json();
    await page.getByRole('heading', { name: 'Preview of this draft: its first run' }).waitFor();
    expect(preview.exportId).toBeNull();
    expect(preview.profiles.new).toBeGreaterThan(0);
    expect(await page.getByRole('row', { name: /^New profiles/ }).textContent()).toContain(
      preview.profiles.new.toLocaleString('en-US'),
    );
    await page.getByText('Preview ready. Nothing was saved.').waitFor();
    expect(page.url()).toMatch(/#\/exports\/new$/);
    await expectAccessible(page);
    expect((await call('GET', '/api/exports')).body.value.length).toBe(before);
    expect(sandbox.stats.objectsProcessed).toBe(objectsBefore);

    // An edit: previewed against the export's sync state (everything unchanged after a run).
    const id = await createExport('Edit, then preview');
    expect((await runToEnd(id)).status).toMatch(/succeeded/);
    const etag = (await call('GET', `/api/exports/${id}`)).body.etag;
    const sent = sandbox.stats.objectsProcessed;
    await page.goto(`${host.url}/#/exports/${id}/edit`);
    await page.getByRole('heading', { name: 'Edit Edit, then preview' }).waitFor();
    await page.getByRole('button', { name: 'Preview draft' }).click();
    await page.getByRole('heading', { name: 'Preview of your changes: what the next run would do' }).waitFor();
    expect(
      await page
        .getByRole('row', { name: /^New profiles/ })
        .getByRole('cell')
        .textContent(),
    ).toBe('0');
    await expectAccessible(page);
    expect((await call('GET', `/api/exports/${id}`)).body.etag).toBe(etag);
    expect(sandbox.stats.objectsProcessed).toBe(sent);
    await context.close();
  });

  it('follows an export the API reports as "detaching", then shows it detached', async () => {
    const { context, page } = await as('Admin');
    const exp = { ...definition('Being detached'), id: 'x-detaching', status: 'detaching', etag: 'e1' };
    const cleanup = {
      id: 'run-detach',
      exportId: 'x-detaching',
      kind: 'cleanup',
      then: 'detach',
      trigger: 'manual',
      status: 'running',
      phase: 'sending',
      counts: { rowsRead: 0, sent: 3 },
      requests: { sent: 1, retried: 0, rateLimited: 0 },
      errors: [],
      warnings: [],
    };
    let gets = 0;
    await page.route('**/api/exports/x-detaching', (r) =>
      r.fulfill({ json: ++gets < 3 ? exp : { ...exp, status: 'inactive', connectionId: null } }),
    );
    await page.route('**/api/exports/x-detaching/runs', (r) =>
      r.fulfill({ json: { value: [gets < 3 ? cleanup : { ...cleanup, status: 'succeeded' }] } }),
    );
    await page.goto(`${host.url}/#/exports/x-detaching`);
    await page.getByText('Detaching — withdrawing from Braze').first().waitFor({ timeout: 5000 });
    await expectAccessible(page);
    await page.getByText('detached (no connection)').waitFor({ timeout: 10_000 });
    expect(await page.getByText('Detaching — withdrawing from Braze').count()).toBe(0);
    await context.close();
  });
});

describe('a held run', () => {
  it('shows why it was held and what it would do, with Approve and Dismiss; approving sends it', async () => {
    const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const source = await writeCiExport(blobs, [{ segment: 'S', partitions: [rows(40)] }]);
    const id = await createExport('Guarded', { source, segments: ['S'], matching: MATCHING });
    expect((await runToEnd(id)).status).toBe('succeeded');
    // Half the audience leaves in the next snapshot: past the guard's 20 %.
    await writeCiExport(blobs, [{ segment: 'S', partitions: [rows(20)] }], { folder: source.folder, stamp: '2026/11/21/0615' });
    const held = await runToEnd(id);
    expect(held.status).toBe('held');
    const { context, page } = await as('Admin');
    await page.goto(`${host.url}/#/exports/${id}`);
    await page.getByText('This run is held until a person approves or dismisses it.').waitFor({ timeout: 5000 });
    await page.getByText(/20 of the 40 members \(50\.0 %\) would lose their membership/).waitFor();
    await page.getByText(/withdraw 20, ≈ 20 data points/).waitFor();
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Approve and send' }).click();
    await page.getByText('No run is going.').waitFor({ timeout: 20_000 });
    const done = (await call('GET', `/api/runs/${held.id}`)).body;
    expect(done).toMatchObject({ status: 'succeeded', counts: { removed: 20 }, approved: { by: 'admin@contoso.com' } });
    await context.close();
  });
});

describe('runs the API will report (mocked answers)', () => {
  it('a cancel that came too late says so', async () => {
    const { context, page } = await as('Admin');
    const exp = { ...definition('Late cancel'), id: 'x-late', status: 'active', etag: 'e1' };
    const run = (status: string) => ({
      id: 'run-late',
      exportId: 'x-late',
      kind: 'export',
      trigger: 'manual',
      status,
      phase: status === 'running' ? 'sending' : 'done',
      queuedAt: '2026-12-01T06:00:00Z',
      startedAt: '2026-12-01T06:00:01Z',
      finishedAt: status === 'running' ? null : '2026-12-01T06:00:09Z',
      counts: { rowsRead: 300, profiles: 300, sent: 300, unchanged: 0, removed: 0, rejected: 0, failed: 0 },
      requests: { sent: 4, retried: 0, rateLimited: 0 },
      errors: [],
      warnings: [],
    });
    let ended = false;
    await page.route('**/api/exports/x-late', (r) => r.fulfill({ json: exp }));
    await page.route('**/api/exports/x-late/runs', (r) => r.fulfill({ json: { value: [run(ended ? 'succeeded' : 'running')] } }));
    await page.route('**/api/runs/run-late/cancel', (r) => {
      ended = true;
      return r.fulfill({ status: 409, json: { error: { code: 'conflict', message: 'The run already ended (succeeded)' } } });
    });
    await page.goto(`${host.url}/#/exports/x-late`);
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await page
      .getByText(/Cancel came too late: the run had already finished \(succeeded\)/)
      .first()
      .waitFor({ timeout: 5000 });
    await expectAccessible(page);
    await context.close();
  });
});
