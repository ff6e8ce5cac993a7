// Exports: every export with its last run at a glance; search, a status filter, where each one
// sends, when it runs next and why a scheduled one did not run. With no export yet, the steps
// that lead to a first one.
import { api, type Me } from '../api';
import { badge, h, notice, num, replace, say, statusLine, takeFlash, when } from '../dom';
import { input, select } from '../forms';

const FILTERS = [
  { value: '', label: 'All' },
  { value: 'attention', label: 'Needs attention' },
  { value: 'running', label: 'Running or queued' },
  { value: 'scheduled', label: 'Scheduled' },
  { value: 'unscheduled', label: 'On demand only' },
  { value: 'inactive', label: 'Detached or being removed' },
];

const needsAttention = (e: any) =>
  ['failed', 'partially_succeeded', 'held'].includes(e.lastRun?.status) ||
  /fail|error|cannot|not /i.test(e.lastCheck?.result ?? '');

function matches(e: any, filter: string): boolean {
  switch (filter) {
    case 'attention':
      return needsAttention(e);
    case 'running':
      return ['queued', 'running'].includes(e.lastRun?.status);
    case 'scheduled':
      return e.status === 'active' && e.schedule?.enabled;
    case 'unscheduled':
      return e.status === 'active' && !e.schedule?.enabled;
    case 'inactive':
      return e.status !== 'active';
    default:
      return true;
  }
}

export async function exportsPage(main: HTMLElement, me: Me, message?: string): Promise<void> {
  const [list, connections] = await Promise.all([
    api('GET', '/api/exports').then((r) => r.value as any[]),
    // Viewers may not list connections: the destination is then left out.
    me.canWrite
      ? api('GET', '/api/connections').then(
          (r) => r.value as any[],
          () => [],
        )
      : Promise.resolve([] as any[]),
  ]);
  const names = new Map(connections.map((c) => [c.id, c.displayName as string]));
  list.sort((a, b) => String(a.name).localeCompare(String(b.name)));
  const search = input({
    type: 'search',
    id: 'export-search',
    autocomplete: 'off',
    placeholder: 'name, segment or Braze segment',
  });
  const filter = select(FILTERS, '', { id: 'export-filter' });
  const body = h('tbody');
  const count = h('p', { class: 'hint' });
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const shown = list.filter(
      (e) =>
        matches(e, filter.value) &&
        (!q || [e.name, e.brazeSegmentApiId, ...(e.segments ?? [])].some((t) => String(t).toLowerCase().includes(q))),
    );
    replace(body, ...shown.map((e) => exportRow(e, names)));
    replace(count, `${shown.length} of ${list.length} exports`);
  };
  search.addEventListener('input', render);
  filter.addEventListener('change', render);
  replace(
    main,
    h('h1', { tabindex: '-1' }, 'Exports'),
    statusLine,
    message ? notice(message, 'error') : null,
    me.canWrite && (list.length > 0 || connections.length > 0)
      ? h('p', {}, h('a', { href: '#/exports/new', class: 'button' }, 'New export'))
      : null,
    list.length === 0
      ? emptyState(me, connections.length > 0)
      : h(
          'div',
          {},
          h(
            'div',
            { class: 'filters', role: 'search' },
            h('label', { for: search.id }, 'Search'),
            search,
            h('label', { for: filter.id }, 'Show'),
            filter,
          ),
          count,
          h(
            'table',
            { class: 'cards' },
            h('caption', { class: 'sr-only' }, 'Exports and their last runs'),
            h('thead', {}, h('tr', {}, ...COLUMNS.map((t) => h('th', { scope: 'col' }, t)))),
            body,
          ),
        ),
  );
  render();
  const flash = takeFlash();
  if (flash) say(flash);
}

const COLUMNS = ['Export', 'Destination', 'Schedule', 'Last run', 'Sent', 'Rejected', 'Failed'];

function exportRow(e: any, names: Map<string, string>): HTMLElement {
  const run = e.lastRun;
  const c = run?.counts ?? {};
  const cell = (i: number, ...children: (Node | string | null)[]) =>
    h('td', { 'data-label': COLUMNS[i]!, class: i >= 4 ? 'n' : null }, ...children);
  return h(
    'tr',
    {},
    cell(
      0,
      h('a', { href: `#/exports/${e.id}`, class: 'name' }, e.name),
      e.status !== 'active' ? h('span', { class: 'muted' }, ` (${e.status === 'inactive' ? 'detached' : e.status})`) : null,
      h('div', { class: 'hint' }, (e.segments ?? []).join(', ')),
    ),
    cell(1, e.connectionId ? `${names.get(e.connectionId) ?? 'Braze'} · ${e.brazeSegmentApiId}` : 'none (detached)'),
    cell(
      2,
      schedule(e),
      e.lastCheck?.result ? h('div', { class: 'hint' }, `Last check ${when(e.lastCheck.at)}: ${e.lastCheck.result}`) : null,
    ),
    cell(
      3,
      run ? badge(run.status) : 'never run',
      run ? h('div', { class: 'hint' }, when(run.finishedAt ?? run.queuedAt)) : null,
    ),
    cell(4, run ? num(c.sent) : ''),
    cell(5, run ? num(c.rejected) : ''),
    cell(6, run ? num(c.failed) : ''),
  );
}

/** When the export runs next, in words. */
export function schedule(e: any): string {
  if (e.status !== 'active') return 'off (detached)';
  if (!e.schedule?.enabled) return 'off (on demand only)';
  const next = e.schedule.cron ? nextOccurrence(e.schedule.cron, new Date()) : null;
  if (e.schedule.cron)
    return next ? `next check ${when(next.toISOString())} (${e.schedule.cron} UTC)` : `at ${e.schedule.cron} (UTC)`;
  return 'at every scheduled refresh that finds a newer snapshot';
}

/** The next minute matching an NCRONTAB (sec min hour day month weekday) expression, within 8 days; null if none or unreadable. */
export function nextOccurrence(cron: string, from: Date): Date | null {
  const parts = cron.trim().split(/\s+/);
  if (parts.length !== 6) return null;
  const field = (text: string, lo: number, hi: number): Set<number> | null => {
    const out = new Set<number>();
    for (const piece of text.split(',')) {
      const m = /^(\*|\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(piece);
      if (!m) return null;
      const start = m[1] === '*' ? lo : Number(m[1]);
      const end = m[2] ? Number(m[2]) : m[1] === '*' || m[3] ? hi : start;
      for (let v = start; v <= end; v += Number(m[3] ?? 1)) out.add(v);
    }
    return out;
  };
  const [, min, hour, day, month, weekday] = parts as [string, string, string, string, string, string];
  const sets = [field(min, 0, 59), field(hour, 0, 23), field(day, 1, 31), field(month, 1, 12), field(weekday, 0, 6)];
  if (sets.some((s) => !s)) return null;
  const [mins, hours, days, months, weekdays] = sets as Set<number>[];
  const t = new Date(from);
  t.setUTCSeconds(0, 0);
  for (let i = 0; i < 8 * 24 * 60; i++) {
    t.setUTCMinutes(t.getUTCMinutes() + 1);
    if (
      mins!.has(t.getUTCMinutes()) &&
      hours!.has(t.getUTCHours()) &&
      days!.has(t.getUTCDate()) &&
      months!.has(t.getUTCMonth() + 1) &&
      weekdays!.has(t.getUTCDay())
    )
      return t;
  }
  return null;
}

function emptyState(me: Me, hasConnection: boolean): HTMLElement {
  if (!me.canWrite) return h('p', {}, 'No export yet. An administrator or contributor creates them; they show here.');
  const step = (done: boolean, ...children: (Node | string)[]) =>
    h('li', { class: done ? 'done' : null }, done ? h('span', { class: 'sr-only' }, 'Done: ') : null, ...children);
  return h(
    'div',
    { class: 'card' },
    h('h2', {}, 'Set up your first export'),
    h(
      'ol',
      { class: 'checklist' },
      step(
        hasConnection,
        me.isAdmin
          ? h('a', { href: '#/connections' }, 'Connect Braze')
          : 'Connect Braze (an administrator creates the connection and shares it with contributors)',
        ': the REST endpoint and an API key with users.track.',
      ),
      step(
        false,
        'Pick the CI export folder: in Customer Insights, Data → Exports → an Azure Blob Storage export writes a folder holding model.json and one CSV folder per segment on every refresh.',
      ),
      step(false, 'Map the columns: which CI column is the e-mail, the Braze customer ID, and any extra attributes.'),
      step(false, 'Preview: what a run would send and what it costs in Braze data points, sending nothing.'),
      step(false, 'Run it, then build the Braze segment from the membership attribute the export page shows.'),
    ),
    hasConnection ? h('p', {}, h('a', { href: '#/exports/new', class: 'button' }, 'New export')) : null,
  );
}
