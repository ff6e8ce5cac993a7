// A run the guards held, with the approve / dismiss choice.
import { api, type Me } from '../../api';
import { badge, h, num, say } from '../../dom';
import { busy } from '../../forms';

/** A run the guards held: what it would do, and the person's choice (approve sends exactly what it held). */
export function heldRun(run: any, me: Me, refresh: () => void): HTMLElement {
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
          `It would send ${num(p.profiles.new + p.profiles.changed)} profiles and withdraw ${num(p.profiles.leaving)}, ≈ ${num(p.dataPoints)} data points, ${num(p.profiles.new)} new to Braze` +
            (p.estimate ? `, in ${num(p.requests)} requests taking ${p.estimate}.` : '.'),
        )
      : null,
    h('p', {}, h('a', { href: `#/runs/${run.id}` }, 'Run details')),
    me.canWrite ? h('div', { class: 'buttons' }, decide('approve'), decide('dismiss')) : null,
  );
}
