// A connection's limits on the Connections page (Admins): what Braze itself reported on the last
// run (its X-RateLimit-* headers), the request budget and hourly cap, this hour's use of the cap,
// warnings where the settings ask more than Braze allows, and the form that changes the two settings.
import { api, ApiError } from '../api';
import { h, num, say, when } from '../dom';
import { FormErrors, input } from '../forms';
import { changedLimits } from './limits-patch';

/** The Limits cell: budget, Braze's word, the hourly cap, and any warning. */
export function limitsCell(c: any): HTMLElement {
  const seen = c.brazeRateLimit;
  const usage = c.hourlyUsage;
  return h(
    'div',
    { class: 'limits' },
    h('p', {}, `Budget: ${num(c.requestBudget)} requests per 3 s`),
    h(
      'p',
      {},
      seen
        ? `Braze reports: ${seen.limit === null ? 'no limit header' : `${num(seen.limit)} per window`}` +
            `${seen.remaining === null ? '' : `, ${num(seen.remaining)} left`}` +
            `${seen.resetsAt ? `, resets ${when(seen.resetsAt)}` : ''} (seen ${when(seen.observedAt)})`
        : 'Braze reports: not seen yet (recorded when a run sends)',
    ),
    h(
      'p',
      {},
      c.hourlyRequestCap
        ? `Hourly cap: ${num(c.hourlyRequestCap)} requests${usage ? `, ${num(usage.used)} used this hour` : ''}`
        : 'Hourly cap: none',
    ),
    ...(c.warnings ?? []).map((w: string) => h('p', { class: 'warning' }, w)),
  );
}

/** An optional whole number of requests ("" = none). */
export function hourlyCapCheck(control: HTMLInputElement): () => string | null {
  return () =>
    control.value.trim() === '' || /^[1-9]\d*$/.test(control.value.trim())
      ? null
      : 'The hourly cap is a whole number of requests (1 or more), or empty for no cap.';
}

export const hourlyCapValue = (control: HTMLInputElement) => (control.value.trim() === '' ? null : Number(control.value.trim()));

export const HOURLY_CAP_HINT =
  'Requests per clock hour that all runs on this connection may send together, so exports leave room in a limit shared with other integrations. Empty: no cap. A run that reaches it waits for the next hour.';

/** Changes the request budget and the hourly cap of a connection. */
export function limitsForm(c: any): HTMLElement {
  const errors = new FormErrors();
  const budget = input({ inputmode: 'numeric', value: String(c.requestBudget ?? ''), autocomplete: 'off' });
  const cap = input({ inputmode: 'numeric', value: c.hourlyRequestCap ? String(c.hourlyRequestCap) : '', autocomplete: 'off' });
  const form = h(
    'form',
    { class: 'inline-form', novalidate: true },
    errors.summary,
    errors.field(`Request budget for ${c.displayName} (requests per 3 s)`, budget, 'requestBudget', undefined, () =>
      /^[1-9]\d*$/.test(budget.value.trim()) ? null : 'The request budget is a whole number of requests (1 or more).',
    ),
    errors.field(`Hourly request cap for ${c.displayName}`, cap, 'hourlyRequestCap', HOURLY_CAP_HINT, hourlyCapCheck(cap)),
    h('button', { type: 'submit' }, 'Save limits'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!errors.checkAll()) return;
    // Only what was changed here: the other setting may have been changed by someone else since the page loaded.
    const body = changedLimits(c, { requestBudget: Number(budget.value.trim()), hourlyRequestCap: hourlyCapValue(cap) });
    if (!body) return say(`${c.displayName}: nothing changed`);
    try {
      await api('PATCH', `/api/connections/${c.id}`, body);
      say(`${c.displayName}: limits saved`);
      location.reload();
    } catch (e) {
      if (e instanceof ApiError) errors.show(e);
      else throw e;
    }
  });
  return form;
}
