// The preview of what the next run would do (nothing sent, nothing saved), of a saved export or a draft.
import { duration, h, num, when } from '../../dom';

/** Why it takes that long: the connection's limits as the estimate used them. */
const LIMITED_BY: Record<string, string> = {
  brazeReportedLimit: 'paced by the limit Braze reported, below the connection’s budget',
  hourlyCap: 'paced by the connection’s hourly request cap',
};

/** "about 2 h 2 min (hourly cap 50,000 reached twice)"; older answers had only seconds. */
export const estimateText = (e: any) => e.text ?? duration(e.seconds);

export function previewView(p: any, title = 'Preview: what the next run would do'): HTMLElement {
  const row = (label: string, value: string) => h('tr', {}, h('th', { scope: 'row' }, label), h('td', { class: 'n' }, value));
  return h(
    'details',
    { class: 'card preview', id: 'preview', open: true },
    h('summary', {}, h('h2', {}, title)),
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
        row('Estimated duration', `${estimateText(p.estimate)} at ${num(p.estimate.requestsPerSecond)} requests/s`),
      ),
    ),
    LIMITED_BY[p.estimate.limitedBy]
      ? h('p', { class: 'hint' }, `Estimated duration ${LIMITED_BY[p.estimate.limitedBy]}.`)
      : null,
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
