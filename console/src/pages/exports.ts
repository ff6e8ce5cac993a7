// Exports: every export with its last run at a glance.
import { api, type Me } from '../api';
import { badge, h, num, replace, when } from '../dom';

export async function exportsPage(main: HTMLElement, me: Me): Promise<void> {
  const list: any[] = (await api('GET', '/api/exports')).value;
  list.sort((a, b) => String(a.name).localeCompare(String(b.name)));
  replace(
    main,
    h('h1', { tabindex: '-1' }, 'Exports'),
    me.canWrite ? h('p', {}, h('a', { href: '#/exports/new', class: 'button' }, 'New export')) : null,
    list.length === 0
      ? h('p', {}, 'No export yet.')
      : h(
          'table',
          {},
          h('caption', { class: 'sr-only' }, 'Exports and their last runs'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Export', 'Segments', 'Schedule', 'Last run', 'When', 'Sent', 'Unchanged', 'Rejected', 'Failed'].map((t) =>
                h('th', { scope: 'col' }, t),
              ),
            ),
          ),
          h('tbody', {}, ...list.map(exportRow)),
        ),
  );
}

function exportRow(e: any): HTMLElement {
  const run = e.lastRun;
  const c = run?.counts ?? {};
  return h(
    'tr',
    {},
    h(
      'td',
      {},
      h('a', { href: `#/exports/${e.id}` }, e.name),
      e.status !== 'active' ? h('span', { class: 'muted' }, ` (${e.status})`) : null,
    ),
    h('td', {}, (e.segments ?? []).join(', ')),
    h('td', {}, e.schedule?.enabled ? (e.schedule.cron ? `on (${e.schedule.cron})` : 'on') : 'off'),
    h('td', {}, run ? badge(run.status) : 'never run'),
    h('td', {}, when(run?.finishedAt)),
    h('td', { class: 'n' }, run ? num(c.sent) : ''),
    h('td', { class: 'n' }, run ? num(c.unchanged) : ''),
    h('td', { class: 'n' }, run ? num(c.rejected) : ''),
    h('td', { class: 'n' }, run ? num(c.failed) : ''),
  );
}
