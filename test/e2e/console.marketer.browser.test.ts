// Issue 29 in a real Chromium, the smaller traps (each test here failed on the console before the
// fix), costs and consequences shown before the click, a page per run, the narrow list, and
// mapping. axe runs on every state visited.
import { BlobServiceClient } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { SAMPLE_CONTAINER, SAMPLE_FOLDER, SAMPLE_MATCHING, SAMPLE_SEGMENTS } from '../../scripts/sample-data';
import { committedScreenshot } from '../helpers/browser';
import { rows, writeCiExport } from '../helpers/ci-export';
import {
  as,
  azurite,
  call,
  createExport,
  definition,
  expectAccessible,
  host,
  runToEnd,
  sandbox,
  useConsoleWorld,
} from '../helpers/console-world';

useConsoleWorld();

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
    const started = page.waitForResponse((r) => r.url().endsWith(`/api/exports/${id}/run`));
    await dialog.getByRole('button', { name: 'Run full sync' }).click();
    expect((await started).status()).toBe(202);
    // The page said "No run is going." before the click too: it is the run list that shows the run ended.
    let runs: { fullSync: boolean; status: string }[] = [];
    for (let i = 0; i < 100 && !(runs.length === 2 && !['queued', 'running'].includes(runs[0]!.status)); i++) {
      await new Promise((r) => setTimeout(r, 200));
      runs = (await call('GET', `/api/exports/${id}/runs`)).body.value;
    }
    expect(runs).toHaveLength(2);
    expect(runs[0]!.fullSync).toBe(true);
    await page.getByText('No run is going.').waitFor({ timeout: 20_000 });
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

  it('a folder change keeps only checked segments the new folder has; with none, its default (a single segment) is checked', async () => {
    const solo = await writeCiExport(BlobServiceClient.fromConnectionString(azurite.connectionString), [
      { segment: 'SoloSegment', partitions: [rows(3)] },
    ]);
    const { context, page } = await as('Contributor');
    await page.goto(`${host.url}/#/exports/new`);
    await page.getByRole('heading', { name: 'New export' }).waitFor();
    const folder = page.getByLabel('CI export folder (holds model.json)');
    await folder.selectOption({ label: `${SAMPLE_CONTAINER} / ${SAMPLE_FOLDER}` });
    await page.getByLabel(new RegExp(`^${SAMPLE_SEGMENTS[1]} — `)).check();
    await folder.selectOption({ label: `${solo.container} / ${solo.folder}` });
    const box = page.getByLabel(/^SoloSegment — /);
    await box.waitFor();
    expect(await box.isChecked()).toBe(true);
    // Back: the sample folder's segment checked before is not checked again (the Solo one was).
    await folder.selectOption({ label: `${SAMPLE_CONTAINER} / ${SAMPLE_FOLDER}` });
    await page.getByLabel(new RegExp(`^${SAMPLE_SEGMENTS[1]} — `)).waitFor();
    const checked = await page
      .locator('input[type=checkbox]:checked')
      .evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value));
    expect(checked.filter((v) => (SAMPLE_SEGMENTS as readonly string[]).includes(v))).toEqual([]);
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
    const asked = page.waitForRequest((r) => r.url().endsWith(`/api/exports/${id}/preview`));
    await page.getByRole('button', { name: 'Preview draft' }).click();
    // The edit is previewed as of the export the form loaded: If-Match, a 412 once it changed.
    expect((await asked).headers()['if-match']).toBe(etag);
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
