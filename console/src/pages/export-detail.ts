// One export: the live run at the top, its actions (run, full sync with its cost first, preview,
// cancel, duplicate, detach, delete — each saying what happens in Braze), what it writes in Braze
// and how to build the Braze segment from it, and its run history with a page per run. While a
// cleanup run withdraws its membership (deleting / detaching), the page follows that run and
// leaves for the list once the export is gone, or offers to retry if the cleanup failed.
import { api, ApiError, type Me } from '../api';
import {
  ask,
  badge,
  setFlash,
  between,
  copyButton,
  duration,
  h,
  notice,
  num,
  replace,
  say,
  statusLine,
  when,
  type Child,
} from '../dom';
import { busy } from '../forms';
import { estimateFrom, estimates, LiveRun } from './live-run';

const ACTIVE = new Set(['queued', 'running']);
const POLL_MS = 1000;
const PAGE = 50;

const membershipAttributes = (e: any): string[] =>
  e.membership?.format === 'boolean'
    ? e.segments.map((s: string) => `${e.membership.booleanPrefix}${s}`)
    : [e.membership?.attribute ?? e.brazeSegmentApiId];

/** What the newest cleanup run says about a delete or detach under way (or failed). */
interface Cleanup {
  runId: string | null;
  then: 'delete' | 'detach';
}
function cleanupOf(exp: any, runs: any[]): Cleanup | null {
  const newest = runs[0];
  const runId = newest?.kind === 'cleanup' ? (newest.id as string) : null;
  if (exp.status === 'deleting' || exp.status === 'detaching')
    return { runId, then: exp.status === 'deleting' ? 'delete' : 'detach' };
  if (runId && newest.then && newest.status !== 'succeeded') return { runId, then: newest.then };
  return null;
}

export async function exportDetailPage(main: HTMLElement, me: Me, id: string, stillShown: () => boolean): Promise<void> {
  let exp = await api('GET', `/api/exports/${id}`);
  let runs: any[] = (await api('GET', `/api/exports/${id}/runs`)).value;
  const errorSlot = h('div');
  const live = h('section', { 'aria-labelledby': 'live-title', class: 'live-section' });
  const liveTitle = h('h2', { id: 'live-title', tabindex: '-1' }, 'Current run');
  const history = h('section', { 'aria-labelledby': 'history-title' });
  const previewSlot = h('div');
  const cleanupSlot = h('div');
  const actionsSlot = h('div');
  let current: LiveRun | null = null;
  let lastOutcome: Child = null;
  let historyPage = 0;
  /** Runs past the newest page, where the API offers a nextLink. */
  let older: any[] = [];
  let nextLink: string | null = null;
  let timer: number | undefined;
  let following: Cleanup | null = null;
  let historyDrawn = '';

  const showError = (e: unknown) => replace(errorSlot, e ? notice((e as Error).message, 'error') : null);
  const schedule = () => {
    clearTimeout(timer);
    timer = window.setTimeout(() => void refresh().catch(showError), POLL_MS);
  };

  /** Asks (naming what happens in Braze), then deletes or detaches; a cleanup run is then followed. */
  async function removeExport(what: 'delete' | 'detach'): Promise<void> {
    const keep = await askRemoval(exp, runs, what);
    if (keep === null) return;
    const path =
      what === 'delete'
        ? `/api/exports/${id}${keep ? '?keepBrazeData=true' : ''}`
        : `/api/exports/${id}/detach${keep ? '?keepBrazeData=true' : ''}`;
    const r = await api(what === 'delete' ? 'DELETE' : 'POST', path, what === 'delete' ? undefined : {}, {
      'If-Match': exp.etag,
    });
    if (r?.cleanupRun) {
      following = { runId: r.cleanupRun.id, then: what };
      render();
      await refresh();
      // The button that asked is gone with the actions: focus goes to what is happening instead.
      if (!document.activeElement || document.activeElement === document.body)
        cleanupSlot.querySelector<HTMLElement>('.notice')?.focus();
      return;
    }
    if (what === 'delete') return leave(`“${exp.name}” deleted${keep ? '; its data stays in Braze' : ''}.`);
    say(`“${exp.name}” detached${keep ? '; its data stays in Braze' : ''}.`);
    exp = r;
    render();
  }

  function leave(message: string): void {
    setFlash(message);
    location.hash = '#/exports';
  }

  const act: Act = {
    remove: removeExport,
    refresh: () => void refresh().catch(showError),
    preview: previewSlot,
    error: showError,
  };

  function render(): void {
    const cleanup = following ?? cleanupOf(exp, runs);
    replace(
      main,
      h('p', {}, h('a', { href: '#/exports' }, '← Exports')),
      h('h1', { tabindex: '-1' }, exp.name),
      statusLine,
      errorSlot,
      cleanupSlot,
      cleanup ? null : actionsSlot,
      cleanup ? null : live,
      cleanup ? null : previewSlot,
      inBraze(exp),
      summary(exp),
      history,
    );
    replace(actionsSlot, me.canWrite && !cleanup ? actions(exp, runs, act) : null);
  }

  function renderCleanup(run: any | null, then: 'delete' | 'detach'): void {
    const verb = then === 'delete' ? 'Deleting' : 'Detaching';
    const failed = run && !ACTIVE.has(run.status) && run.status !== 'succeeded';
    if (failed) {
      const retry = h('button', { type: 'button' }, then === 'delete' ? 'Retry deleting' : 'Retry detaching');
      retry.addEventListener('click', () =>
        busy(retry, () => {
          following = null;
          return removeExport(then).catch(showError);
        }),
      );
      say(`Withdrawing the membership from Braze failed; the export was not ${then === 'delete' ? 'deleted' : 'detached'}.`);
      replace(
        cleanupSlot,
        h(
          'div',
          { class: 'notice error', tabindex: '-1' },
          h('p', {}, `Withdrawing the membership from Braze failed (run ${run.status}); the export was not ${then}d.`),
          run.errors?.length ? h('p', {}, run.errors.join('; ')) : null,
          h('p', {}, h('a', { href: `#/runs/${run.id}` }, 'The cleanup run'), ' has the details.'),
          me.canWrite ? h('div', { class: 'buttons' }, retry) : null,
        ),
      );
      following = null;
      // An export the API still holds as deleting / detaching is left alone until the cleanup is retried.
      const held = exp.status === 'deleting' || exp.status === 'detaching';
      replace(actionsSlot, me.canWrite && !held ? actions(exp, runs, act) : null);
      if (!actionsSlot.isConnected) cleanupSlot.after(actionsSlot);
      return;
    }
    const c = run?.counts ?? {};
    replace(
      cleanupSlot,
      h(
        'div',
        { class: 'notice cleanup', tabindex: '-1' },
        h('p', { class: 'strong' }, `${verb} — withdrawing from Braze`),
        h(
          'p',
          {},
          run
            ? `Cleanup run ${run.status}: ${num((c.sent ?? 0) + (c.removed ?? 0))} profiles cleared so far. This page ${then === 'delete' ? 'returns to the list' : 'shows the detached export'} when it is done.`
            : 'A cleanup run clears the membership in Braze first.',
        ),
        run ? h('p', {}, h('a', { href: `#/runs/${run.id}` }, 'Follow the cleanup run')) : null,
      ),
    );
  }

  async function refresh(): Promise<void> {
    clearTimeout(timer);
    if (!stillShown()) return;
    let gone = false;
    try {
      // While a run goes, only the runs change; the export is read again when a cleanup or an end may have changed it.
      const needExport = !current || following !== null || cleanupOf(exp, runs) !== null;
      const [e, r] = await Promise.all([
        needExport ? api('GET', `/api/exports/${id}`) : Promise.resolve(exp),
        api('GET', `/api/exports/${id}/runs`),
      ]);
      exp = e;
      runs = r.value;
      if (older.length === 0) nextLink = r.nextLink ?? null;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
      gone = true;
    }
    if (!stillShown()) return;
    const cleanup = following ?? cleanupOf(exp, runs);
    if (gone) {
      if (cleanup?.then === 'delete' || following)
        return leave(`“${exp.name}” deleted; its membership was withdrawn from Braze.`);
      throw new Error('This export was deleted (by someone else, or from another page).');
    }
    if (cleanup) {
      const run = runs.find((r) => r.id === cleanup.runId) ?? null;
      if (cleanup.then === 'detach' && exp.status === 'inactive' && run?.status === 'succeeded') {
        following = null;
        say(`“${exp.name}” detached; its membership was withdrawn from Braze.`);
        render();
      } else {
        if (!cleanupSlot.isConnected || actionsSlot.isConnected) render();
        renderCleanup(run, cleanup.then);
        if (!run || ACTIVE.has(run.status) || run.status === 'succeeded') schedule();
        return;
      }
    }
    replace(cleanupSlot);
    if (runs.length) actionsSlot.querySelector('.first-run')?.remove();
    // Back from following a cleanup (a detach done): the page shows the export as it is now.
    if (!live.isConnected) render();
    const active = runs.find((r) => ACTIVE.has(r.status));
    if (active) {
      if (current?.id !== active.id) {
        const previous = runs.find((r) => !ACTIVE.has(r.status) && r.kind !== 'cleanup');
        current = new LiveRun(active, me, estimates.get(id), previous?.counts?.rowsRead || undefined);
        // The stale preview folds away while a run goes.
        previewSlot.querySelector('details')?.removeAttribute('open');
        replace(live, liveTitle, current.element);
      } else current!.update(active);
      schedule();
    } else if (runs[0]?.status === 'held') {
      current = null;
      replace(
        live,
        liveTitle,
        heldRun(runs[0], me, () => void refresh().catch(showError)),
      );
    } else {
      const was = current;
      if (was) {
        const ended = runs.find((r) => r.id === was.id);
        const hadFocus = live.contains(document.activeElement);
        lastOutcome = ended ? outcomeLine(ended, was.cancelled) : null;
        current = null;
        if (ended) say(lastOutcomeText(ended, lastOutcome), false);
        replace(live, liveTitle, lastOutcome, h('p', {}, 'No run is going.'));
        if (hadFocus) liveTitle.focus();
      } else replace(live, liveTitle, lastOutcome, h('p', {}, 'No run is going.'));
    }
    // The history is drawn again only when it changed: a live run's figures move in the live
    // section, so focus on a history link survives the polling.
    const drawn = JSON.stringify([
      runs.map((r) => (ACTIVE.has(r.status) ? [r.id, r.status] : [r.id, r.status, r.finishedAt])),
      older.length,
      nextLink,
      historyPage,
    ]);
    if (drawn === historyDrawn) return;
    historyDrawn = drawn;
    replace(
      history,
      ...runsHistory([...runs, ...older], historyPage, (p) => {
        historyPage = p;
        void refresh().catch(showError);
      }),
      nextLink
        ? h(
            'button',
            {
              type: 'button',
              onclick: () =>
                void api('GET', nextLink!)
                  .then((more) => {
                    older = [...older, ...more.value];
                    nextLink = more.nextLink ?? null;
                    historyPage = Math.floor((runs.length + older.length - 1) / PAGE);
                    return refresh();
                  })
                  .catch(showError),
            },
            'Load older runs',
          )
        : null,
    );
  }

  render();
  await refresh();
}

/** A run the guards held: what it would do, and the person's choice (approve sends exactly what it held). */
function heldRun(run: any, me: Me, refresh: () => void): HTMLElement {
  const p = run.held ?? null;
  const reasons: string[] = p?.reasons ?? [];
  const decide = (what: 'approve' | 'dismiss') => {
    const b = h(
      'button',
      { type: 'button', class: what === 'approve' ? 'primary' : 'danger' },
      what === 'approve' ? 'Approve and send' : 'Dismiss',
    );
    b.addEventListener('click', () =>
      busy(b, async () => {
        await api('POST', `/api/runs/${run.id}/${what}`, {});
        say(what === 'approve' ? 'Approved: the run sends what it held.' : 'Dismissed: the run ends, nothing sent.');
        refresh();
      }),
    );
    return b;
  };
  return h(
    'div',
    { class: 'notice held' },
    h('p', { class: 'strong' }, badge('held'), ' This run is held until a person approves or dismisses it.'),
    reasons.length ? h('ul', {}, ...reasons.map((r) => h('li', {}, r))) : null,
    p
      ? h(
          'p',
          {},
          `It would send ${num(p.profiles.new + p.profiles.changed)} profiles and withdraw ${num(p.profiles.leaving)}, ≈ ${num(p.dataPoints)} data points, ${num(p.profiles.new)} new to Braze.`,
        )
      : null,
    h('p', {}, h('a', { href: `#/runs/${run.id}` }, 'Run details')),
    me.canWrite ? h('div', { class: 'buttons' }, decide('approve'), decide('dismiss')) : null,
  );
}

const lastOutcomeText = (run: any, line: Child) =>
  line instanceof HTMLElement ? (line.textContent ?? '') : `Run ${run.status.replace(/_/g, ' ')}.`;

/** How a finished run ended, in a sentence; a cancel that came too late says so. */
function outcomeLine(run: any, cancelAsked: boolean): HTMLElement {
  const c = run.counts ?? {};
  const link = h('a', { href: `#/runs/${run.id}` }, 'Run details');
  if (run.status === 'cancelled')
    return h(
      'p',
      { class: 'notice' },
      `Run cancelled: ${num(c.sent)} profiles sent before it stopped; the rest not sent — cancelled (the next run sends them). `,
      link,
    );
  const late = cancelAsked ? `Cancel came too late: the run had already finished (${run.status.replace(/_/g, ' ')}). ` : '';
  return h(
    'p',
    { class: run.status === 'succeeded' ? 'notice' : 'notice error' },
    `${late}Last run ${run.status.replace(/_/g, ' ')}: ${num(c.sent)} sent, ${num(c.unchanged)} unchanged, ${num(c.rejected)} rejected, ${num(c.failed)} failed. `,
    link,
  );
}

/** What the export writes in Braze, and the segment filter a marketer builds on it. */
function inBraze(e: any): HTMLElement {
  const m = e.matching ?? {};
  const attrs = membershipAttributes(e);
  const code = (t: string) => h('code', {}, t);
  const recipe =
    e.membership?.format === 'boolean'
      ? e.segments.map((s: string) => `Custom attribute ${e.membership.booleanPrefix}${s} is true`)
      : e.segments.map((s: string) => `Custom attribute ${attrs[0]} includes value ${s}`);
  const recipeText = `In Braze: Audience → Segments → Create segment → Filters → Custom Attributes:\n${recipe.join('\n  OR ')}`;
  return h(
    'section',
    { class: 'card in-braze', 'aria-labelledby': 'in-braze-title' },
    h('h2', { id: 'in-braze-title' }, 'In Braze'),
    h('p', {}, 'Each exported profile gets these attributes:'),
    h(
      'ul',
      {},
      h(
        'li',
        {},
        code('external_id'),
        ` ← ${m.brazeCustomerId}; when empty, user alias `,
        code(m.aliasLabel ?? 'ci_customer_id'),
        ` ← ${m.profileId}`,
      ),
      h('li', {}, code('email'), ` ← ${m.email}`),
      m.phone ? h('li', {}, code('phone'), ` ← ${m.phone}`) : null,
      ...Object.entries(m.attributes ?? {}).map(([k, v]) => h('li', {}, code(k), ` ← ${String(v)}`)),
      e.membership?.format === 'boolean'
        ? h('li', {}, ...attrs.flatMap((a, i) => [i ? ', ' : '', code(a)]), ': true while in the segment, false after leaving')
        : h('li', {}, code(attrs[0]!), ': the list of this export’s CI segments the profile is in (removed when it leaves all)'),
    ),
    h('p', {}, 'Build the Braze segment with this filter:'),
    h('pre', { tabindex: '0', 'aria-label': 'Braze segment filter', id: 'braze-recipe' }, recipeText),
    h(
      'div',
      { class: 'buttons' },
      Object.assign(
        copyButton('Copy filter recipe', () => recipeText),
        { className: 'copy' },
      ),
    ),
  );
}

function summary(e: any): HTMLElement {
  const m = e.matching ?? {};
  const row = (term: string, value: string) => [h('dt', {}, term), h('dd', {}, value)];
  const statusText: Record<string, string> = {
    active: 'active',
    inactive: 'detached (no connection)',
    deleting: 'deleting — withdrawing from Braze',
    detaching: 'detaching — withdrawing from Braze',
  };
  return h(
    'dl',
    { class: 'summary' },
    ...row('Status', statusText[e.status] ?? e.status),
    ...row('CI source', `${e.source.container} / ${e.source.folder}`),
    ...row('Segments', e.segments.join(', ')),
    ...row('Braze segment', e.brazeSegmentApiId),
    ...row(
      'Matching',
      `profile ${m.profileId}, e-mail ${m.email}, Braze customer ID ${m.brazeCustomerId}${m.phone ? `, phone ${m.phone}` : ''}`,
    ),
    ...row(
      'Schedule',
      e.status !== 'active'
        ? 'off (detached)'
        : e.schedule.enabled
          ? `every scheduled refresh with a newer snapshot${e.schedule.cron ? `, at ${e.schedule.cron}` : ''}`
          : 'off (on demand only)',
    ),
    ...(e.lastCheck?.result ? row('Last scheduled check', `${when(e.lastCheck.at)}: ${e.lastCheck.result}`) : []),
  );
}

/** Profiles Braze holds this export's membership for, as far as the runs tell (null: never sent). */
function heldInBraze(runs: any[]): number | null {
  const sent = runs.filter((r) => r.kind !== 'cleanup' && (r.counts?.sent ?? 0) > 0);
  if (sent.length === 0) return null;
  const last = runs.find((r) => r.kind !== 'cleanup' && ['succeeded', 'partially_succeeded'].includes(r.status)) ?? sent[0];
  const c = last.counts;
  return Math.max(0, (c.profiles ?? 0) - (c.rejected ?? 0) - (c.failed ?? 0));
}

/** The delete / detach question, naming what happens in Braze. Resolves keepBrazeData, or null if cancelled. */
async function askRemoval(e: any, runs: any[], what: 'delete' | 'detach'): Promise<boolean | null> {
  const held = e.connectionId ? heldInBraze(runs) : null;
  const attrs = membershipAttributes(e).join(', ');
  const verb = what === 'delete' ? 'Delete export' : 'Detach export';
  const title = what === 'delete' ? `Delete “${e.name}”?` : `Detach “${e.name}” from its connection?`;
  const after = what === 'delete' ? 'then the export is deleted' : 'then the export is kept, inactive and unscheduled';
  if (held === null) {
    const answer = await ask(
      title,
      [
        h(
          'p',
          {},
          e.connectionId
            ? 'Nothing from this export has reached Braze yet, so there is nothing to withdraw there.'
            : 'The export is detached: its data in Braze was withdrawn or kept when it was detached.',
        ),
      ],
      [{ label: verb, value: 'go', danger: true }],
    );
    return answer ? true : null;
  }
  const name = `removal-${what}`;
  const withdraw = h('input', { type: 'radio', name, id: `${name}-withdraw`, value: 'withdraw', checked: true });
  const keep = h('input', { type: 'radio', name, id: `${name}-keep`, value: 'keep' });
  const answer = await ask(
    title,
    [
      h('p', {}, `About ${num(held)} profiles in Braze carry this export’s membership attribute ${attrs}.`),
      h(
        'fieldset',
        {},
        h('legend', {}, 'In Braze'),
        h(
          'div',
          { class: 'check' },
          withdraw,
          h(
            'label',
            { for: withdraw.id },
            `Withdraw it: a cleanup run clears ${attrs} on those profiles (about ${num(held)} data points; it never creates a profile), ${after}.`,
          ),
        ),
        h(
          'div',
          { class: 'check' },
          keep,
          h(
            'label',
            { for: keep.id },
            `Keep the data in Braze: ${what === 'delete' ? 'deleted' : 'detached'} at once; the profiles keep ${attrs} as last sent, and Braze segments built on it keep matching them.`,
          ),
        ),
      ),
    ],
    [{ label: verb, value: 'go', danger: true }],
  );
  return answer ? keep.checked : null;
}

interface Act {
  remove: (w: 'delete' | 'detach') => Promise<void>;
  refresh: () => void;
  preview: HTMLElement;
  error: (e: unknown) => void;
}

function actions(e: any, runs: any[], act: Act): HTMLElement {
  const errorOut = (err: unknown) => {
    const active = err instanceof ApiError ? (err.details.activeRun as { id?: string } | undefined) : undefined;
    const stale = err instanceof ApiError && err.status === 412;
    say('');
    act.error(
      new Error(
        stale
          ? 'This export changed since you opened it: reload the page to see the change, then try again.'
          : `${(err as Error).message}${active?.id ? ` (run ${active.id})` : ''}`,
      ),
    );
  };
  const button = (label: string, action: () => Promise<void>, cls?: string) => {
    const b = h('button', { type: 'button', class: cls }, label);
    b.addEventListener('click', () => {
      act.error(null);
      void busy(b, () => action().catch(errorOut));
    });
    return b;
  };
  const start = async (fullSync: boolean) => {
    const r = await api('POST', `/api/exports/${e.id}/run`, { fullSync });
    say(`Run queued (${r.runId}).`);
    act.refresh();
  };
  const active = e.status === 'active' && e.connectionId;
  return h(
    'div',
    { class: 'buttons', role: 'group', 'aria-label': 'Export actions' },
    active ? button('Run now', () => start(false)) : null,
    active
      ? button('Full sync', async () => {
          say('Previewing the full sync: reading the newest snapshot (nothing is sent)…');
          const p = await api('POST', `/api/exports/${e.id}/preview`, { fullSync: true });
          estimates.set(e.id, estimateFrom(p));
          say('');
          const profiles = p.profiles.total - p.profiles.rejected;
          const answer = await ask(
            'Run a full sync?',
            [
              h(
                'p',
                { class: 'strong' },
                `Re-sends ${num(profiles)} profiles ≈ ${num(p.dataPoints)} data points, ${num(p.newToBraze.profiles)} new to Braze — Continue?`,
              ),
              h(
                'p',
                {},
                `${num(p.requests)} requests, ${duration(p.estimate.seconds)} at the connection’s request budget. A normal run sends only what changed since the last send; a full sync sends every profile again, and every attribute sent is a billed data point.`,
              ),
              h('p', { class: 'hint' }, p.newToBraze.note),
            ],
            [{ label: 'Run full sync', value: 'go' }],
          );
          if (answer) await start(true);
        })
      : null,
    active
      ? button('Preview', async () => {
          say('Previewing: reading the newest snapshot… (nothing is sent)');
          const p = await api('POST', `/api/exports/${e.id}/preview`, {});
          estimates.set(e.id, estimateFrom(p));
          replace(act.preview, previewView(p));
          say('Preview ready.');
        })
      : null,
    h('a', { href: `#/exports/${e.id}/edit`, class: 'button' }, 'Edit'),
    button('Duplicate', async () => {
      const copy = await api('POST', `/api/exports/${e.id}/duplicate`, {});
      location.hash = `#/exports/${copy.id}`;
    }),
    e.connectionId ? button('Detach', () => act.remove('detach'), 'danger') : null,
    button('Delete', () => act.remove('delete'), 'danger'),
    runs.length === 0 && active ? h('span', { class: 'hint first-run' }, 'Saved, not run yet: preview it, then run it.') : null,
  );
}

/** The history: newest first, durations, a page per run, 50 at a time. */
function runsHistory(runs: any[], page: number, go: (page: number) => void): Child[] {
  const title = h('h2', { id: 'history-title' }, 'Run history');
  if (runs.length === 0) return [title, h('p', {}, 'No run yet.')];
  const shown = runs.slice(page * PAGE, (page + 1) * PAGE);
  const pager =
    runs.length > PAGE
      ? h(
          'div',
          { class: 'buttons' },
          page > 0 ? h('button', { type: 'button', onclick: () => go(page - 1) }, 'Newer runs') : null,
          (page + 1) * PAGE < runs.length ? h('button', { type: 'button', onclick: () => go(page + 1) }, 'Older runs') : null,
        )
      : runs.length === PAGE
        ? h('p', { class: 'hint' }, `The newest ${PAGE} runs.`)
        : null;
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
  return [
    title,
    h(
      'table',
      { class: 'cards' },
      h('caption', { class: 'sr-only' }, 'Runs, newest first'),
      h('thead', {}, h('tr', {}, ...heads.map((t) => h('th', { scope: 'col' }, t)))),
      h(
        'tbody',
        {},
        ...shown.map((r) => {
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
            h(
              'td',
              { 'data-label': heads[11]! },
              r.rejectedReport ? h('a', { href: r.rejectedReport }, 'Rejected rows (CSV)') : '—',
            ),
          );
        }),
      ),
    ),
    pager,
  ];
}

export function previewView(p: any): HTMLElement {
  const row = (label: string, value: string) => h('tr', {}, h('th', { scope: 'row' }, label), h('td', { class: 'n' }, value));
  return h(
    'details',
    { class: 'card preview', id: 'preview', open: true },
    h('summary', {}, h('h2', {}, 'Preview: what the next run would do')),
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
        row('Estimated duration', `${duration(p.estimate.seconds)} at ${num(p.estimate.requestsPerSecond)} requests/s`),
      ),
    ),
    p.warnings?.length ? h('ul', { class: 'warnings' }, ...p.warnings.map((w: string) => h('li', {}, w))) : null,
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
          // Scrollable, so it must take keyboard focus (axe: scrollable-region-focusable).
          h('pre', { tabindex: '0', 'aria-label': 'Sample objects as JSON' }, JSON.stringify(p.samples, null, 2)),
        )
      : null,
    h('p', { class: 'hint' }, p.newToBraze.note),
  );
}
