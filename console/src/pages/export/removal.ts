// The delete / detach question, naming what happens in Braze.
import { ask, h, num } from '../../dom';
import { membershipAttributes } from './in-braze';

/** Profiles Braze holds this export's membership for, as far as the runs tell (null: never sent). */
function heldInBraze(runs: any[]): number | null {
  const sent = runs.filter((r) => r.kind !== 'cleanup' && (r.counts?.sent ?? 0) > 0);
  if (sent.length === 0) return null;
  const last = runs.find((r) => r.kind !== 'cleanup' && ['succeeded', 'partially_succeeded'].includes(r.status)) ?? sent[0];
  const c = last.counts;
  return Math.max(0, (c.profiles ?? 0) - (c.rejected ?? 0) - (c.failed ?? 0));
}

/** The delete / detach question, naming what happens in Braze. Resolves keepBrazeData, or null if cancelled. */
export async function askRemoval(e: any, runs: any[], what: 'delete' | 'detach'): Promise<boolean | null> {
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
