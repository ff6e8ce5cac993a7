// The export page's Braze proof panel in a real Chromium, against the local host on Azurite and the
// Braze sandbox: the filter to create in Braze and the proof segment's ID saved from the panel,
// Verify now finding no drift, then a drift made in the sandbox found and repaired from the panel
// (its cost asked first), and a Viewer's read-only panel; axe-core on each state.
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { SAMPLE_SEGMENTS } from '../../scripts/sample-data';
import { screenshot, seriousViolations } from '../helpers/browser';
import { as, call, createExport, host, runToEnd, sandbox, useConsoleWorld } from '../helpers/console-world';

// Braze's export is looked at every 0.2 s here.
useConsoleWorld({ VERIFY_POLL_SECONDS: '0.2' });
let exportId: string;

const api = async (method: string, path: string) => (await call(method, `/api/${path}`)).body;

async function ended(runId: string): Promise<any> {
  for (;;) {
    const run = await api('GET', `runs/${runId}`);
    if (!['queued', 'running'].includes(run.status)) return run;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function pageAs(role: 'Admin' | 'Viewer'): Promise<Page> {
  const { page } = await as(role);
  await page.goto(`${host.url}/#/exports/${exportId}`);
  await page.getByRole('heading', { name: 'Braze proof' }).waitFor();
  return page;
}

beforeAll(async () => {
  exportId = await createExport('Proof me', { brazeSegmentApiId: '0000-0000-0000' });
  expect((await runToEnd(exportId)).status).toBe('succeeded');
  sandbox.exports.define({
    id: 'ci-proof',
    filters: SAMPLE_SEGMENTS.map((s) => ({ attribute: '0000-0000-0000', includes: s })),
  });
}, 180_000);

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
