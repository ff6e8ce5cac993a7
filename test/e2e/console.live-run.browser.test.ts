// Runs people can follow in a real Chromium: live progress they can read and cancel from the
// keyboard (issue 29's traps 4 and 5), a held run with Approve and Dismiss, and a cancel that came
// too late. axe runs on every state visited.
import { BlobServiceClient } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
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

describe('traps 4 and 5: a live run', () => {
  it('shows progress from requests against the preview, a growing "sent" and an ETA; keeps keyboard focus on Cancel run', async () => {
    // A one-segment export (all of it sent early) on a connection paced at 1 request per 3 s: its
    // eight requests go one by one, long after its last row is read.
    const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const source = await writeCiExport(blobs, [{ segment: 'S', partitions: [rows(600)] }]);
    const slow = await call('POST', '/api/connections', {
      displayName: 'Slow sandbox',
      restEndpoint: sandbox.url,
      apiKey: 'sandbox-key',
      requestBudget: 1,
      consent: true,
    });
    expect(slow.status).toBe(201);
    const id = await createExport('Watch me', {
      connectionId: slow.body.id,
      brazeSegmentApiId: 'seg-watch',
      source,
      segments: ['S'],
      matching: MATCHING,
    });
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
