// The export's run history: newest first, durations, a page per run, 50 at a time.
import { badge, between, duration, h, num, when, type Child } from '../../dom';

export const PAGE = 50;

const heads = [
  'Status',
  'Trigger',
  'Queued',
  'Took',
  'Profiles',
  'Sent',
  'Unchanged',
  'Removed',
  'Rejected',
  'Failed',
  'Requests',
  'Report',
];

/** The history: newest first, durations, a page per run, 50 at a time. */
export function runsHistory(runs: any[], page: number, go: (page: number) => void): Child[] {
  const title = h('h2', { id: 'history-title' }, 'Run history');
  if (runs.length === 0) return [title, h('p', {}, 'No run yet.')];
  const shown = runs.slice(page * PAGE, (page + 1) * PAGE);
  return [
    title,
    h(
      'table',
      { class: 'cards' },
      h('caption', { class: 'sr-only' }, 'Runs, newest first'),
      h('thead', {}, h('tr', {}, ...heads.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, ...shown.map(historyRow)),
    ),
    pager(runs, page, go),
  ];
}

/** Newer / older runs buttons past one page; a hint when the runs fill exactly one. */
function pager(runs: any[], page: number, go: (page: number) => void): Child {
  return runs.length > PAGE
    ? h(
        'div',
        { class: 'buttons' },
        page > 0 ? h('button', { type: 'button', onclick: () => go(page - 1) }, 'Newer runs') : null,
        (page + 1) * PAGE < runs.length ? h('button', { type: 'button', onclick: () => go(page + 1) }, 'Older runs') : null,
      )
    : runs.length === PAGE
      ? h('p', { class: 'hint' }, `The newest ${PAGE} runs.`)
      : null;
}

/** One run: its status (a link to its page), trigger, times, counts and report. */
function historyRow(r: any): HTMLElement {
  const c = r.counts ?? {};
  const n = (i: number, v: Child) => h('td', { class: 'n', 'data-label': heads[i]! }, v);
  const cancelled = r.status === 'cancelled';
  return h(
    'tr',
    {},
    h(
      'td',
      { 'data-label': heads[0]! },
      h(
        'a',
        { href: `#/runs/${r.id}`, 'aria-label': `Run of ${when(r.queuedAt)}: ${r.status.replace(/_/g, ' ')}` },
        badge(r.status),
      ),
      r.errors?.length ? h('div', { class: 'error-text' }, r.errors.join('; ')) : null,
    ),
    h(
      'td',
      { 'data-label': heads[1]! },
      `${r.trigger}${r.fullSync ? ' (full)' : ''}${r.kind && r.kind !== 'export' ? ` (${r.kind})` : ''}`,
    ),
    h('td', { 'data-label': heads[2]! }, when(r.queuedAt)),
    h('td', { 'data-label': heads[3]! }, r.finishedAt ? duration(between(r.startedAt ?? r.queuedAt, r.finishedAt)) : '—'),
    n(4, num(c.profiles)),
    n(5, num(c.sent)),
    n(6, num(c.unchanged)),
    n(7, num(c.removed)),
    n(8, num(c.rejected)),
    n(9, cancelled && c.failed ? h('span', { class: 'muted' }, 'not sent — cancelled') : num(c.failed)),
    n(10, num(r.requests?.sent)),
    h('td', { 'data-label': heads[11]! }, r.rejectedReport ? h('a', { href: r.rejectedReport }, 'Rejected rows (CSV)') : '—'),
  );
}
