// The export page's "Braze proof" panel: the last verification (drift by kind, the drift report),
// "Verify now" and "Repair" (its cost asked first), and, until the export has a proof segment, how to
// make one in Braze: the filter on this export's membership attribute(s), and where its ID goes.
import { api, type Me } from '../../api';
import { ask, badge, copyButton, h, notice, num, say, when, type Child } from '../../dom';
import { busy } from '../../forms';
import { membershipAttributes } from './in-braze';

const KINDS = [
  [
    'missing',
    'Missing',
    'CI and the last run say the profile is in a segment Braze does not show (membership removed, user deleted)',
  ],
  ['extra', 'Extra', 'a profile the export sent shows a segment CI does not give it'],
  ['stale', 'Stale', 'a mapped attribute in Braze is not the value the export last sent'],
  ['unknown', 'Unknown', 'a user in the Braze segment the export never sent'],
] as const;

/** The Braze segment filter a verification reads back: any of the export's memberships. */
export function proofFilter(e: any): string {
  const attrs = membershipAttributes(e);
  const lines =
    e.membership?.format === 'boolean'
      ? attrs.map((a) => `Custom attribute ${a} is true`)
      : e.segments.map((s: string) => `Custom attribute ${attrs[0]} includes value ${s}`);
  return `In Braze: Audience → Segments → Create segment → Filters (match ANY):\n  ${lines.join('\n  OR ')}\nThen copy the segment's API identifier (Settings → APIs and Identifiers → Segment identifiers).`;
}

type Refresh = { refresh: () => void; onError: (err: unknown) => void };

function setup(e: any, me: Me, { refresh, onError }: Refresh): Child[] {
  // Setting it up is for those who may change the export.
  if (!me.canWrite) return [h('p', {}, 'No proof segment is set for this export yet.')];
  const text = proofFilter(e);
  const input = h('input', {
    id: 'proof-segment-id',
    name: 'proofSegmentId',
    autocomplete: 'off',
    value: e.proofSegmentId ?? '',
  });
  const save = h('button', { type: 'submit' }, 'Save proof segment');
  const form = h(
    'form',
    { class: 'inline-form' },
    h('label', { for: 'proof-segment-id' }, 'Proof segment API identifier'),
    input,
    save,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void busy(save, async () => {
      await api('PATCH', `/api/exports/${e.id}`, { proofSegmentId: input.value.trim() }, { 'If-Match': e.etag });
      say('Proof segment saved.');
      refresh();
    }).catch(onError);
  });
  return [
    h('p', {}, 'To verify, create this Braze segment once, then give its API identifier here:'),
    h('pre', { tabindex: '0', 'aria-label': 'Braze proof segment filter', id: 'proof-recipe' }, text),
    h(
      'div',
      { class: 'buttons' },
      copyButton('Copy proof segment filter', () => text),
    ),
    h(
      'p',
      { class: 'hint' },
      "The connection's Braze key needs the users.export.segment permission (the one Braze's own CI integration asks for). Verifying writes nothing to Braze.",
    ),
    me.canWrite ? form : null,
  ];
}

function counts(v: any): HTMLElement {
  return h(
    'table',
    { class: 'drift' },
    h('caption', {}, 'Drift by kind'),
    h(
      'thead',
      {},
      h('tr', {}, h('th', { scope: 'col' }, 'Kind'), h('th', { scope: 'col' }, 'Profiles'), h('th', { scope: 'col' }, 'Means')),
    ),
    h(
      'tbody',
      {},
      ...KINDS.map(([k, label, means]) =>
        h('tr', {}, h('th', { scope: 'row' }, label), h('td', {}, num(v.counts[k])), h('td', {}, means)),
      ),
    ),
  );
}

async function repair(run: any, refresh: () => void): Promise<void> {
  const cost = await api('POST', `/api/runs/${run.id}/repair`, { dryRun: true });
  const choice = await ask(
    'Repair the drift?',
    [
      h(
        'p',
        {},
        `The next export run sends ${num(cost.profiles)} profiles again and withdraws the membership of ${num(cost.withdrawals)} users: about ${num(cost.requests)} Braze requests. Nothing else is sent.`,
      ),
      cost.unaddressable
        ? h('p', {}, `${num(cost.unaddressable)} unknown users have no external ID or alias: remove them in Braze.`)
        : null,
    ],
    [{ label: 'Repair', value: 'repair' }],
  );
  if (choice !== 'repair') return;
  await api('POST', `/api/runs/${run.id}/repair`, {});
  say('Repair queued: the export run re-sends only the drift.');
  refresh();
}

function lastVerification(run: any, me: Me, { refresh, onError }: Refresh): Child[] {
  const v = run.verify ?? {};
  const out: Child[] = [h('p', {}, 'Last verification: ', badge(run.status), ` ${when(run.finishedAt ?? run.queuedAt)}`)];
  if (run.status === 'failed') out.push(notice(run.errors.at(-1) ?? 'It failed.', 'error'));
  if (!v.counts) return out;
  out.push(h('p', { class: 'proof-summary' }, v.summary));
  const drift = KINDS.reduce((n, [k]) => n + (v.counts[k] ?? 0), 0);
  if (drift > 0) out.push(counts(v));
  if (v.driftReport)
    out.push(
      h('p', {}, h('a', { href: v.driftReport, download: '' }, 'Download the drift report (CSV: ids and fields, no values)')),
    );
  if (v.repair)
    out.push(h('p', {}, `Repaired by ${v.repair.by} ${when(v.repair.at)}: ${num(v.repair.profiles)} profiles re-sent.`));
  else if (drift > 0 && me.canWrite) {
    const button = h('button', { type: 'button' }, 'Repair');
    button.addEventListener('click', () => void busy(button, () => repair(run, refresh)).catch(onError));
    out.push(h('div', { class: 'buttons' }, button));
  }
  return out;
}

/** The panel, from the export and its runs (newest first). */
export function proofPanel(e: any, runs: any[], me: Me, refresh: () => void, onError: (err: unknown) => void): HTMLElement {
  const last = runs.find((r) => r.kind === 'verify');
  const going = runs.some((r) => r.status === 'queued' || r.status === 'running');
  const verifyNow = h('button', { type: 'button', disabled: going || !e.proofSegmentId }, 'Verify now');
  verifyNow.addEventListener(
    'click',
    () =>
      void busy(verifyNow, async () => {
        await api('POST', `/api/exports/${e.id}/verify`, {});
        say('Verification queued: Braze is asked for the proof segment’s users.');
        refresh();
      }).catch(onError),
  );
  return h(
    'section',
    { class: 'card proof', 'aria-labelledby': 'proof-title' },
    h('h2', { id: 'proof-title' }, 'Braze proof'),
    h('p', {}, 'Reads back what Braze holds for this export and compares it with what the export last sent.'),
    ...(e.proofSegmentId ? [h('p', {}, 'Proof segment: ', h('code', {}, e.proofSegmentId))] : setup(e, me, { refresh, onError })),
    ...(last ? lastVerification(last, me, { refresh, onError }) : [h('p', {}, 'Not verified yet.')]),
    me.canWrite && e.proofSegmentId ? h('div', { class: 'buttons' }, verifyNow) : null,
  );
}
