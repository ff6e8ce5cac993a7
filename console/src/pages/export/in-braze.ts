// What an export writes in Braze (and the segment filter a marketer builds on it), and its summary.
import { copyButton, h, when } from '../../dom';

/** The membership attribute(s) the export writes in Braze. */
export const membershipAttributes = (e: any): string[] =>
  e.membership?.format === 'boolean'
    ? e.segments.map((s: string) => `${e.membership.booleanPrefix}${s}`)
    : [e.membership?.attribute ?? e.brazeSegmentApiId];

export /** What the export writes in Braze, and the segment filter a marketer builds on it. */
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

/** The export's settings, as a list of terms. */
export function summary(e: any): HTMLElement {
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
