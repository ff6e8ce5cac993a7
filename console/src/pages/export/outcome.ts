// How a finished run ended, as the live section shows it once the run is over.
import { h, num, type Child } from '../../dom';

/** What the screen reader hears when a run ends: the outcome line's text, or the run's status. */
export const lastOutcomeText = (run: any, line: Child) =>
  line instanceof HTMLElement ? (line.textContent ?? '') : `Run ${run.status.replace(/_/g, ' ')}.`;

/** How a finished run ended, in a sentence; a cancel that came too late says so. */
export function outcomeLine(run: any, cancelAsked: boolean): HTMLElement {
  const c = run.counts ?? {};
  const link = h('a', { href: `#/runs/${run.id}` }, 'Run details');
  if (run.status === 'cancelled')
    return h(
      'p',
      { class: 'notice' },
      `Run cancelled: ${num(c.sent)} profiles sent before it stopped; the rest not sent — cancelled (the next run sends them). `,
      link,
    );
  // A verification sends nothing: its outcome is what it found (the Braze proof panel has the details).
  if (run.kind === 'verify')
    return h(
      'p',
      { class: run.status === 'succeeded' ? 'notice' : 'notice error' },
      `Verification ${run.status.replace(/_/g, ' ')}: ${run.verify?.summary ?? run.errors.at(-1) ?? ''} `,
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
