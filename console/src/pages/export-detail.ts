// One export: what it does, its actions (run, full sync, preview, cancel, duplicate, detach,
// delete), the active run's live progress, and its run history with rejected-rows reports.
import { api, ApiError, type Me } from '../api';
import { badge, h, notice, num, replace, when } from '../dom';
import { busy } from '../forms';

const ACTIVE = new Set(['queued', 'running']);
const POLL_MS = 1000;

export async function exportDetailPage(main: HTMLElement, me: Me, id: string, stillShown: () => boolean): Promise<void> {
  const exp = await api('GET', `/api/exports/${id}`);
  const status = h('div', { 'aria-live': 'polite' });
  const live = h('section', { 'aria-labelledby': 'live-title' });
  const history = h('section', { 'aria-labelledby': 'history-title' });
  const previewSlot = h('section', { 'aria-live': 'polite' });
  replace(
    main,
    h('p', {}, h('a', { href: '#/exports' }, '← Exports')),
    h('h1', { tabindex: '-1' }, exp.name),
    summary(exp),
    me.canWrite ? actions(exp, status, previewSlot, () => void refresh().catch(showError)) : null,
    status,
    previewSlot,
    live,
    history,
  );
  let timer: number | undefined;
  const showError = (e: unknown) => replace(status, notice(`Could not refresh the runs: ${(e as Error).message}`, 'error'));
  async function refresh(): Promise<void> {
    clearTimeout(timer);
    if (!stillShown()) return;
    const runs: any[] = (await api('GET', `/api/exports/${id}/runs`)).value;
    const active = runs.find((r) => ACTIVE.has(r.status));
    replace(live, h('h2', { id: 'live-title' }, 'Current run'), active ? progress(active, me) : h('p', {}, 'No run is going.'));
    replace(history, h('h2', { id: 'history-title' }, 'Run history'), runsTable(runs));
    if (active) timer = window.setTimeout(() => void refresh().catch(showError), POLL_MS);
  }
  await refresh();
}

function summary(e: any): HTMLElement {
  const m = e.matching ?? {};
  const row = (term: string, value: string) => [h('dt', {}, term), h('dd', {}, value)];
  return h(
    'dl',
    { class: 'summary' },
    ...row('Status', e.status === 'active' ? 'active' : `${e.status} (no connection)`),
    ...row('CI source', `${e.source.container} / ${e.source.folder}`),
    ...row('Segments', e.segments.join(', ')),
    ...row('Braze segment', e.brazeSegmentApiId),
    ...row(
      'Matching',
      `profile ${m.profileId}, e-mail ${m.email}, Braze customer ID ${m.brazeCustomerId}${m.phone ? `, phone ${m.phone}` : ''}`,
    ),
    ...row(
      'Attributes',
      Object.entries(m.attributes ?? {})
        .map(([k, v]) => `${k} ← ${v}`)
        .join(', ') || 'none',
    ),
    ...row(
      'Membership',
      e.membership.format === 'boolean'
        ? `boolean, prefix ${e.membership.booleanPrefix}`
        : `list in ${e.membership.attribute ?? e.brazeSegmentApiId}`,
    ),
    ...row(
      'Schedule',
      e.schedule.enabled
        ? `every scheduled refresh with a newer snapshot${e.schedule.cron ? `, at ${e.schedule.cron}` : ''}`
        : 'off (on demand only)',
    ),
  );
}

function actions(e: any, status: HTMLElement, previewSlot: HTMLElement, refresh: () => void): HTMLElement {
  const button = (label: string, action: (b: HTMLButtonElement) => Promise<void>, cls?: string) => {
    const b = h('button', { type: 'button', class: cls }, label);
    b.addEventListener('click', () =>
      busy(b, () =>
        action(b).catch((err: unknown) => {
          const active = err instanceof ApiError ? (err.details.activeRun as { id?: string } | undefined) : undefined;
          replace(status, notice(`${(err as Error).message}${active?.id ? ` (run ${active.id})` : ''}`, 'error'));
        }),
      ),
    );
    return b;
  };
  const start = (fullSync: boolean) => async () => {
    const r = await api('POST', `/api/exports/${e.id}/run`, { fullSync });
    replace(status, notice(`Run queued (${r.runId}).`));
    refresh();
  };
  const remove = (what: 'detach' | 'delete') => async () => {
    const question =
      what === 'delete'
        ? `Delete "${e.name}"? Its segment membership is withdrawn from Braze first.`
        : `Detach "${e.name}" from its connection? Its segment membership is withdrawn from Braze first.`;
    if (!confirm(question)) return;
    const r =
      what === 'delete' ? await api('DELETE', `/api/exports/${e.id}`) : await api('POST', `/api/exports/${e.id}/detach`, {});
    // Deleted at once (204): nothing left to show here.
    if (what === 'delete' && !r) {
      location.hash = '#/exports';
      return;
    }
    // A cleanup run withdraws the membership from Braze first: it shows below, as any run.
    replace(status, notice(r?.message ?? 'Export detached.'));
    refresh();
  };
  return h(
    'div',
    { class: 'buttons', role: 'group', 'aria-label': 'Export actions' },
    button('Run now', start(false)),
    button('Full sync', start(true)),
    button('Preview', async () => {
      replace(previewSlot, notice('Previewing: reading the newest snapshot… (nothing is sent)'));
      try {
        replace(previewSlot, previewView(await api('POST', `/api/exports/${e.id}/preview`, {})));
      } catch (err) {
        replace(previewSlot);
        throw err;
      }
    }),
    h('a', { href: `#/exports/${e.id}/edit`, class: 'button' }, 'Edit'),
    button('Duplicate', async () => {
      const copy = await api('POST', `/api/exports/${e.id}/duplicate`, {});
      location.hash = `#/exports/${copy.id}`;
    }),
    e.connectionId ? button('Detach', remove('detach'), 'danger') : null,
    button('Delete', remove('delete'), 'danger'),
  );
}

function progress(run: any, me: Me): HTMLElement {
  const c = run.counts;
  const p = run.progress;
  const bar = h('progress', { id: 'run-progress', 'aria-label': 'Run progress', max: p?.bucketsTotal || 1 });
  // While reading, how far is unknown: the bar is indeterminate (no value).
  if (run.phase === 'sending' || run.phase === 'done') bar.value = p?.bucketsDone ?? 0;
  const cancel = me.canWrite && !run.cancelRequested ? h('button', { type: 'button', class: 'danger' }, 'Cancel run') : null;
  cancel?.addEventListener('click', () => busy(cancel, () => api('POST', `/api/runs/${run.id}/cancel`, {})));
  return h(
    'div',
    { class: 'live' },
    h(
      'p',
      {},
      badge(run.status),
      ` ${run.phase ?? 'waiting'}${run.waitingFor ? ` — waiting for ${run.waitingFor}` : ''}${run.cancelRequested ? ' — cancelling' : ''}`,
    ),
    bar,
    h(
      'p',
      { class: 'counts' },
      `Rows read ${num(c.rowsRead)} · profiles ${num(c.profiles)} · sent ${num(c.sent)} · unchanged ${num(c.unchanged)} · rejected ${num(c.rejected)} · failed ${num(c.failed)} · requests ${num(run.requests.sent)} · rate-limited ${num(run.requests.rateLimited)}`,
    ),
    cancel,
  );
}

function runsTable(runs: any[]): HTMLElement {
  if (runs.length === 0) return h('p', {}, 'No run yet.');
  return h(
    'table',
    {},
    h('caption', { class: 'sr-only' }, 'Runs, newest first'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...[
          'Status',
          'Trigger',
          'Queued',
          'Finished',
          'Profiles',
          'Sent',
          'Unchanged',
          'Removed',
          'Rejected',
          'Failed',
          'Requests',
          'Report',
        ].map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    h(
      'tbody',
      {},
      ...runs.map((r) =>
        h(
          'tr',
          {},
          h('td', {}, badge(r.status), r.errors?.length ? h('div', { class: 'error-text' }, r.errors.join('; ')) : null),
          h('td', {}, `${r.trigger}${r.fullSync ? ' (full)' : ''}${r.kind === 'cleanup' ? ' (cleanup)' : ''}`),
          h('td', {}, when(r.queuedAt)),
          h('td', {}, when(r.finishedAt)),
          ...[
            r.counts.profiles,
            r.counts.sent,
            r.counts.unchanged,
            r.counts.removed,
            r.counts.rejected,
            r.counts.failed,
            r.requests.sent,
          ].map((n) => h('td', { class: 'n' }, num(n))),
          h('td', {}, r.rejectedReport ? h('a', { href: r.rejectedReport }, 'Rejected rows (CSV)') : '—'),
        ),
      ),
    ),
  );
}

function previewView(p: any): HTMLElement {
  const row = (label: string, value: string) => h('tr', {}, h('th', { scope: 'row' }, label), h('td', { class: 'n' }, value));
  return h(
    'div',
    { class: 'card preview', id: 'preview' },
    h('h2', {}, 'Preview: what the next run would do'),
    h(
      'p',
      { class: 'hint' },
      `Snapshot ${p.snapshot.folder} (${when(p.snapshot.modifiedTime)}). Nothing was sent to Braze and nothing was saved. Took ${p.tookSeconds} s.`,
    ),
    h(
      'table',
      { class: 'figures' },
      h('caption', { class: 'sr-only' }, 'Preview figures'),
      h(
        'tbody',
        {},
        row('New profiles', num(p.profiles.new)),
        row('Changed profiles', num(p.profiles.changed)),
        row('Unchanged profiles', num(p.profiles.unchanged)),
        row('Leaving (membership removed)', num(p.profiles.leaving)),
        row('Rejected rows', num(p.rejectedRows.total)),
        row('Braze requests', num(p.requests)),
        row('Braze data points', num(p.dataPoints)),
        row('Profiles new to Braze (MAU contracts)', num(p.newToBraze.profiles)),
        row('Estimated duration', `${p.estimate.seconds} s at ${num(p.estimate.requestsPerSecond)} requests/s`),
      ),
    ),
    p.rejectedRows.first.length
      ? h(
          'details',
          {},
          h('summary', {}, 'First rejected rows'),
          h(
            'ul',
            {},
            ...p.rejectedRows.first.map((r: any) => h('li', {}, `${r.segment} ${r.partition} row ${r.record}: ${r.reason}`)),
          ),
        )
      : null,
    p.samples.length
      ? h(
          'details',
          {},
          h('summary', {}, `Sample objects (${p.samples.length}, e-mails and phones masked)`),
          h('pre', {}, JSON.stringify(p.samples, null, 2)),
        )
      : null,
    h('p', { class: 'hint' }, p.newToBraze.note),
  );
}
