// Issue 29's first traps in a real Chromium (each test here failed on the console before the fix):
// the schedule checkbox, editing a detached export, and deleting an export whose membership is in
// Braze. axe runs on every state visited.
import { describe, expect, it } from 'vitest';
import {
  as,
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
