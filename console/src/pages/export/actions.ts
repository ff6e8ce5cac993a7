// The export's actions: run, full sync (its cost asked first), preview, edit, duplicate, detach, delete.
import { api, ApiError } from '../../api';
import { ask, h, num, replace, say } from '../../dom';
import { busy } from '../../forms';
import { estimateFrom, estimates } from '../live-run';
import { estimateText, previewView } from './preview';

/** What the actions need from the page. */
export interface Act {
  remove: (w: 'delete' | 'detach') => Promise<void>;
  refresh: () => void;
  preview: HTMLElement;
  error: (e: unknown) => void;
}

export function actions(e: any, runs: any[], act: Act): HTMLElement {
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
                `${num(p.requests)} requests, ${estimateText(p.estimate)} at the connection’s limits. A normal run sends only what changed since the last send; a full sync sends every profile again, and every attribute sent is a billed data point.`,
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
