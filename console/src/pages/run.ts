// A page per run: who or what started it, the snapshot, how long it took, rows per segment, every
// outcome, values left out, warnings, Braze's refusals, and the rejected rows inline with their
// reasons beside the download. A run still going shows its live progress here too.
import { api, type Me } from '../api';
import { badge, between, duration, h, num, replace, statusLine, when, type Child } from '../dom';
import { estimates, LiveRun } from './live-run';

const ACTIVE = new Set(['queued', 'running']);
const INLINE_ROWS = 100;

export async function runPage(main: HTMLElement, me: Me, runId: string, stillShown: () => boolean): Promise<void> {
  let run = await api('GET', `/api/runs/${runId}`);
  const exp = await api('GET', `/api/exports/${run.exportId}`).catch(() => null);
  const live = h('div');
  const body = h('div');
  let current: LiveRun | null = null;
  const title = `${run.kind === 'cleanup' ? 'Cleanup run' : run.kind === 'verify' ? 'Verification run' : 'Run'} of ${when(run.queuedAt)}`;
  replace(
    main,
    h('p', {}, exp ? h('a', { href: `#/exports/${exp.id}` }, `← ${exp.name}`) : h('a', { href: '#/exports' }, '← Exports')),
    h('h1', { tabindex: '-1' }, title),
    statusLine,
    live,
    body,
  );
  // While the run goes only its live figures change in place (focus stays put); the rest is drawn again when its status changes.
  let drawn = '';
  const render = async () => {
    if (ACTIVE.has(run.status)) {
      if (!current) replace(live, (current = new LiveRun(run, me, estimates.get(run.exportId), undefined)).element);
      else current.update(run);
    } else if (current) {
      const hadFocus = live.contains(document.activeElement);
      current = null;
      replace(live);
      if (hadFocus) main.querySelector('h1')?.focus();
    }
    if (drawn === run.status) return;
    drawn = run.status;
    replace(body, ...details(run, exp));
    if (run.rejectedReport && !ACTIVE.has(run.status)) body.append(await rejectedRows(run.rejectedReport));
  };
  await render();
  const poll = async () => {
    if (!stillShown() || !ACTIVE.has(run.status)) return;
    run = await api('GET', `/api/runs/${runId}`);
    await render();
    window.setTimeout(() => void poll().catch(() => undefined), 1000);
  };
  window.setTimeout(() => void poll().catch(() => undefined), 1000);
}

function details(r: any, exp: any): Child[] {
  // A verification sends nothing: its page shows what it found instead of export figures.
  if (r.kind === 'verify') return [runSummary(r, exp), ...errorsAndWarnings(r), ...verifySection(r)];
  return [runSummary(r, exp), ...errorsAndWarnings(r), ...outcomeSection(r), ...segmentsSection(r), ...omittedSection(r)];
}

/** A verification's findings: profiles compared, drift by kind, the drift report. */
function verifySection(r: any): Child[] {
  const v = r.verify;
  if (!v?.counts) return [];
  const c = v.counts;
  const rows: Child[][] = [
    ['Sent by the export (sync state)', num(c.inState)],
    [v.sample ? 'Read back from Braze (sample)' : 'In the Braze segment', num(c.inBraze)],
    ['Matched', num(c.matched)],
    ['Missing', num(c.missing)],
    ['Extra', num(c.extra)],
    ['Stale', num(c.stale)],
    ['Unknown', num(c.unknown)],
  ];
  return [
    h('h2', {}, 'What Braze holds'),
    table('Verification', ['Compared', 'Profiles'], rows),
    v.driftReport ? h('p', {}, h('a', { href: v.driftReport, download: '' }, 'Download the drift report (CSV)')) : null,
  ];
}

/** A table of figures: the first cell of each row heads it, the second is a number. */
function table(caption: string, heads: string[], rows: Child[][]): HTMLElement {
  return h(
    'table',
    {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...heads.map((t) => h('th', { scope: 'col' }, t)))),
    h(
      'tbody',
      {},
      ...rows.map((cells) =>
        h('tr', {}, ...cells.map((v, i) => h(i ? 'td' : 'th', i === 1 ? { class: 'n' } : i ? {} : { scope: 'row' }, v))),
      ),
    ),
  );
}

/** When the attempt's first request went out, from when it began reading (the last attempt's, for a run resumed). */
const firstAfter = (seconds: number) => (seconds < 1 ? 'within a second' : `after ${duration(seconds)}`);

/** Who or what started the run, its snapshot, its times and its Braze requests. */
function runSummary(r: any, exp: any): HTMLElement {
  const row = (term: string, value: Child) => [h('dt', {}, term), h('dd', {}, value)];
  return h(
    'dl',
    { class: 'summary' },
    ...row('Status', badge(r.status)),
    ...row('Export', exp ? h('a', { href: `#/exports/${exp.id}` }, exp.name) : `${r.exportId} (deleted)`),
    ...row(
      'Started by',
      `${r.trigger === 'schedule' ? 'the schedule' : r.trigger}${r.queuedBy ? ` — ${r.queuedBy}` : ''}${r.fullSync ? ' (full sync)' : ''}${
        r.kind && r.kind !== 'export' ? ` · ${r.kind}${r.then ? `, then ${r.then}` : ''}` : ''
      }`,
    ),
    ...row('Snapshot', r.snapshot ? `${r.snapshot.folder} (${when(r.snapshot.modifiedTime)})` : '—'),
    ...row('Queued · started · finished', `${when(r.queuedAt)} · ${when(r.startedAt)} · ${when(r.finishedAt)}`),
    ...row(
      'Took',
      `${duration(between(r.startedAt ?? r.queuedAt, r.finishedAt))}${
        r.timings ? ` (reading ${duration(r.timings.readingSeconds)}, sending ${duration(r.timings.sendingSeconds)})` : ''
      }${r.attempts > 1 ? `, ${r.attempts} attempts` : ''}`,
    ),
    ...row(
      'Braze requests',
      `${num(r.requests?.sent)} sent, ${num(r.requests?.retried)} retried, ${num(r.requests?.rateLimited)} rate-limited${
        typeof r.timings?.firstRequestSeconds === 'number' ? `; the first ${firstAfter(r.timings.firstRequestSeconds)}` : ''
      }`,
    ),
  );
}

/** Errors and Braze's refusals, then warnings: each a notice when there are any. */
function errorsAndWarnings(r: any): Child[] {
  return [
    r.errors?.length
      ? h(
          'div',
          { class: 'notice error' },
          h('h2', {}, 'Errors and Braze refusals'),
          h('ul', {}, ...r.errors.map((e: string) => h('li', {}, e))),
        )
      : null,
    r.warnings?.length
      ? h('div', { class: 'notice' }, h('h2', {}, 'Warnings'), h('ul', {}, ...r.warnings.map((w: string) => h('li', {}, w))))
      : null,
  ];
}

/** Every profile, by outcome, with what the outcome means. */
function outcomeSection(r: any): Child[] {
  const c = r.counts ?? {};
  const cancelled = r.status === 'cancelled';
  const outcome: [string, number, string][] = [
    ['Profiles in the snapshot', c.profiles, 'every distinct profile, counted once below'],
    ['Sent', c.sent, 'attributes sent to Braze'],
    ['Unchanged', c.unchanged, 'not sent: nothing changed since the last send'],
    ['Rejected', c.rejected, 'cannot be sent (see the rows below)'],
    [
      cancelled ? 'Not sent — cancelled' : 'Failed',
      c.failed,
      cancelled ? 'the next run sends them' : 'refused or not answered; retried next run',
    ],
    ['Removed', c.removed, 'left every segment: membership removed'],
    ['Removals failed', c.removalsFailed, 'retried next run'],
    ['New to Braze', c.newProfiles, 'profiles this export reached for the first time'],
  ];
  return [
    h('h2', {}, 'Outcome'),
    table(
      'Every profile, by outcome',
      ['Outcome', 'Profiles', 'Meaning'],
      outcome.map(([label, n, meaning]) => [label, num(n), meaning]),
    ),
  ];
}

/** Rows read per CI segment. */
function segmentsSection(r: any): Child[] {
  const c = r.counts ?? {};
  const segments = Object.entries(r.segments ?? {}) as [string, { rows: number }][];
  return [
    h('h2', {}, 'Rows per segment'),
    segments.length
      ? table(
          'Rows read per CI segment',
          ['CI segment', 'Rows'],
          [...segments.map(([s, v]) => [s, num(v.rows)]), ['All segments', num(c.rowsRead)]],
        )
      : h('p', {}, `${num(c.rowsRead)} rows read.`),
  ];
}

/** Values left out (invalid in CI, not sent), by attribute. */
function omittedSection(r: any): Child[] {
  const omitted = Object.entries(r.omittedAttributes ?? {}) as [string, number][];
  return [
    h('h2', {}, 'Values left out'),
    omitted.length
      ? table(
          'Values left out, by attribute (invalid in CI, not sent)',
          ['Attribute', 'Values left out'],
          omitted.map(([a, n]) => [a, num(n)]),
        )
      : h('p', {}, 'None: every mapped value was valid.'),
  ];
}

/** The rejected-rows report, its first rows inline (parsed from the same CSV the link downloads). */
async function rejectedRows(href: string): Promise<HTMLElement> {
  const section = h('section', { 'aria-labelledby': 'rejected-title' }, h('h2', { id: 'rejected-title' }, 'Rejected rows'));
  section.append(h('p', {}, h('a', { href }, 'Rejected rows (CSV)')));
  try {
    const res = await fetch(href, { credentials: 'same-origin' });
    const rows = parseCsv(await res.text()).filter((r) => r.some((c) => c));
    const [head, ...rest] = rows;
    if (!head) return section;
    section.append(
      h(
        'table',
        {},
        h(
          'caption',
          {},
          `${rest.length > INLINE_ROWS ? `First ${INLINE_ROWS} of ${num(rest.length)}` : num(rest.length)} rejected rows`,
        ),
        h('thead', {}, h('tr', {}, ...head.map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, ...rest.slice(0, INLINE_ROWS).map((r) => h('tr', {}, ...r.map((v) => h('td', {}, v))))),
      ),
    );
  } catch (e) {
    section.append(h('p', { class: 'error-text' }, `Could not read the report: ${(e as Error).message}`));
  }
  return section;
}

/** RFC 4180 CSV: quoted cells may hold commas, quotes ("") and newlines. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  if (cell || row.length) rows.push([...row, cell]);
  return rows;
}
