// A delete or detach under way: the cleanup run withdrawing the export's membership from Braze.
import { h, num } from '../../dom';

/** What the newest cleanup run says about a delete or detach under way (or failed). */
export interface Cleanup {
  runId: string | null;
  then: 'delete' | 'detach';
}
export function cleanupOf(exp: any, runs: any[]): Cleanup | null {
  const newest = runs[0];
  const runId = newest?.kind === 'cleanup' ? (newest.id as string) : null;
  if (exp.status === 'deleting' || exp.status === 'detaching')
    return { runId, then: exp.status === 'deleting' ? 'delete' : 'detach' };
  if (runId && newest.then && newest.status !== 'succeeded') return { runId, then: newest.then };
  return null;
}

/** The cleanup run going (or not started yet): how far it got, and where the page goes when it is done. */
export function cleanupProgress(run: any | null, then: 'delete' | 'detach'): HTMLElement {
  const verb = then === 'delete' ? 'Deleting' : 'Detaching';
  const c = run?.counts ?? {};
  return h(
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
  );
}

/** The cleanup run failed: the export was kept; the retry button where the person may retry. */
export function cleanupFailed(run: any, then: 'delete' | 'detach', retry: HTMLElement | null): HTMLElement {
  return h(
    'div',
    { class: 'notice error', tabindex: '-1' },
    h('p', {}, `Withdrawing the membership from Braze failed (run ${run.status}); the export was not ${then}d.`),
    run.errors?.length ? h('p', {}, run.errors.join('; ')) : null,
    h('p', {}, h('a', { href: `#/runs/${run.id}` }, 'The cleanup run'), ' has the details.'),
    retry ? h('div', { class: 'buttons' }, retry) : null,
  );
}
