// A real Chromium for console tests, driven by playwright-core (Playwright's own browser download
// cannot work here): Debian's chromium-headless-shell when installed (.ci/run installs it), else its
// chromium. The shell is the same Blink and V8 without the browser's UI layer, and what Playwright
// itself runs headless; it costs the suite about a quarter less of Chromium's CPU. Pages are checked
// with axe-core and photographed into test-output/ (git-ignored).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type axe from 'axe-core';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';

// The binary itself: /usr/bin's wrapper script would stay between Playwright and the browser it stops.
const HEADLESS_SHELL = '/usr/lib/chromium/chromium-headless-shell';
export const CHROMIUM = process.env.CHROMIUM_PATH ?? (existsSync(HEADLESS_SHELL) ? HEADLESS_SHELL : '/usr/bin/chromium');
const AXE_MINIFIED = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const SCREENSHOTS = path.resolve(__dirname, '..', '..', 'test-output', 'console');

export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `No Chromium at ${CHROMIUM}: install Debian's chromium-headless-shell or chromium package (bash .ci/run does) or set CHROMIUM_PATH`,
    );
  return chromium.launch({
    executablePath: CHROMIUM,
    // This machine's network is closed: without these, Chromium keeps calling home and fails at it.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      // Software compositing in the browser process: one process less to start and feed.
      '--in-process-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/**
 * axe-core's serious and critical violations on the page as it is now, as readable lines. axe is put
 * into the document once and run there: @axe-core/playwright injected it again on every check and
 * gathered the results in a new page, about a second of Chromium's CPU per check. `evaluate` is not
 * bound by the console's Content-Security-Policy, as that package's injection was not. The minified
 * build (the same rules) is what goes in: sending the script to the page is most of a check's cost.
 */
export async function seriousViolations(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_MINIFIED);
  const violations = await page.evaluate(async () => {
    type Rule = { id: string; impact?: string };
    const page = window as unknown as { axe: typeof axe & { _audit: { rules: Rule[] } } };
    // Rules that can only find moderate or minor issues are not run: they are filtered out below
    // anyway (a rule with an impact gives every result that impact; one without is run).
    const mild = page.axe._audit.rules.filter((r) => r.impact === 'moderate' || r.impact === 'minor');
    const found = await page.axe.run(document, {
      resultTypes: ['violations'],
      rules: Object.fromEntries(mild.map((r) => [r.id, { enabled: false }])),
    });
    return found.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.targets.join(', ')}`);
}

/**
 * The screenshots the README shows: what is on screen (or one element), kept small. They go to
 * console/screenshots/ (committed) with UPDATE_SCREENSHOTS=1, else to test-output/ like the rest,
 * so an ordinary test run leaves the work tree clean.
 */
export const COMMITTED_SCREENSHOTS = path.resolve(__dirname, '..', '..', 'console', 'screenshots');
export async function committedScreenshot(page: Page, name: string, element?: Locator): Promise<void> {
  const dir = process.env.UPDATE_SCREENSHOTS === '1' ? COMMITTED_SCREENSHOTS : SCREENSHOTS;
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.png`);
  if (element) await element.screenshot({ path: file });
  else await page.screenshot({ path: file, fullPage: false });
}
