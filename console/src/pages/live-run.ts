// A run in progress, updated in place: the figures change, the elements stay, so focus (on
// "Cancel run", say) survives every refresh. Progress is measured in requests sent against the
// preview's estimate (else rows read against the last run's), with a continuously growing "sent"
// and a time left; phase changes and the outcome are announced through the one status line.
import { api, type Me } from '../api';
import { badge, duration, h, num, replace, say, when } from '../dom';

/** What a preview said the next run would do: the yardstick for its progress. */
export interface Estimate {
  requests: number;
  objects: number;
  rowsRead: number;
  seconds: number;
  /** Hours the connection's hourly cap makes the run wait: the rate seen on the page then says little. */
  hourlyCapWaits: number;
  fullSync: boolean;
  folder?: string;
}
export const estimates = new Map<string, Estimate>();

export function estimateFrom(p: any): Estimate {
  return {
    requests: p.requests,
    objects: p.objects,
    rowsRead: p.rowsRead,
    seconds: p.estimate?.seconds ?? 0,
    hourlyCapWaits: p.estimate?.hourlyCapWaits ?? 0,
    fullSync: p.fullSync,
    folder: p.snapshot?.folder,
  };
}

export class LiveRun {
  readonly element: HTMLElement;
  private readonly head = h('p', { class: 'live-head' });
  private readonly bar = h('progress', { id: 'run-progress', 'aria-label': 'Run progress', max: 100 });
  private readonly figures = h('p', { class: 'counts' });
  private readonly eta = h('p', { class: 'eta' });
  private readonly cancel: HTMLButtonElement | null;
  private cancelAsked = false;
  private first?: { at: number; requests: number };
  private phase = '';

  constructor(
    public run: any,
    me: Me,
    private readonly estimate: Estimate | undefined,
    private readonly rowsBefore: number | undefined,
  ) {
    this.cancel = me.canWrite ? h('button', { type: 'button', class: 'danger' }, 'Cancel run') : null;
    this.cancel?.addEventListener('click', () => void this.askCancel());
    this.element = h('div', { class: 'live' }, this.head, this.bar, this.figures, this.eta, this.cancel);
    this.update(run);
  }

  get id(): string {
    return this.run.id;
  }

  /** Whether cancelling was asked from this page (so a late cancel can say it came too late). */
  get cancelled(): boolean {
    return this.cancelAsked || Boolean(this.run.cancelRequested);
  }

  private async askCancel(): Promise<void> {
    if (!this.cancel || this.cancelAsked) return;
    this.cancelAsked = true;
    this.cancel.setAttribute('aria-disabled', 'true');
    this.cancel.textContent = 'Cancelling…';
    say('Cancelling the run…');
    try {
      this.update(await api('POST', `/api/runs/${this.run.id}/cancel`, {}));
    } catch (e) {
      say(`Could not cancel: ${(e as Error).message}`);
    }
  }

  update(run: any): void {
    this.run = run;
    const c = run.counts ?? {};
    const requests = run.requests?.sent ?? 0;
    const est = this.estimate && this.estimate.fullSync === Boolean(run.fullSync) ? this.estimate : undefined;
    const now = Date.now();
    if (!this.first && run.status === 'running') this.first = { at: now, requests };

    const cleanup = run.kind === 'cleanup';
    const phase = run.phase ?? 'waiting';
    if (phase !== this.phase) {
      this.phase = phase;
      say(`${cleanup ? 'Cleanup run' : 'Run'} ${run.status}${run.phase ? `: ${run.phase}` : ''}.`);
    }
    replace(
      this.head,
      badge(run.status),
      ` ${cleanup ? 'withdrawing membership — ' : ''}${phase}${run.waitingFor ? ` — waiting for ${run.waitingFor}` : ''}${
        this.cancelled ? ' — cancelling' : ''
      }`,
    );

    // How far: requests against the estimate, else rows against the last run's.
    let fraction: number | null = null;
    if (est && est.requests > 0) fraction = requests / est.requests;
    else if (this.rowsBefore) fraction = (c.rowsRead ?? 0) / this.rowsBefore;
    if (fraction === null || run.status === 'queued') this.bar.removeAttribute('value');
    else this.bar.value = Math.round(Math.min(0.99, fraction) * 100);
    this.bar.setAttribute('aria-valuetext', fraction === null ? 'working' : `${Math.round(Math.min(0.99, fraction) * 100)} %`);

    // "sent" as requests go out: objects per request from the estimate (else Braze's 75), never past the estimate.
    const perRequest = est && est.requests ? est.objects / est.requests : 75;
    const sentSoFar = Math.max(c.sent ?? 0, Math.round(Math.min(requests * perRequest, est?.objects ?? Infinity)));
    const parts = [
      est ? `${num(requests)} requests of ~${num(est.requests)}` : `${num(requests)} requests`,
      `rows read ${num(c.rowsRead)}${est ? ` of ~${num(est.rowsRead)}` : this.rowsBefore ? ` of ~${num(this.rowsBefore)}` : ''}`,
      `sent ${sentSoFar > (c.sent ?? 0) ? '≈ ' : ''}${num(sentSoFar)}`,
      `unchanged ${num(c.unchanged)}`,
      `rejected ${num(c.rejected)}`,
      c.failed ? `failed ${num(c.failed)}` : '',
      run.requests?.rateLimited ? `rate-limited ${num(run.requests.rateLimited)}` : '',
    ];
    replace(this.figures, parts.filter(Boolean).join(' · '));

    // Time left: the rate seen on this page, else the preview's estimate less the time spent.
    let left: number | null = null;
    if (run.resumesAt && Date.parse(run.resumesAt) > now) {
      replace(this.eta, `waiting for the connection's hourly request cap: resumes ${when(run.resumesAt)}`);
      return;
    }
    if (est && est.requests > 0 && !est.hourlyCapWaits && this.first && requests > this.first.requests) {
      const rate = (requests - this.first.requests) / ((now - this.first.at) / 1000);
      left = Math.max(0, est.requests - requests) / rate;
    } else if (est && run.startedAt) left = Math.max(1, est.seconds - (now - Date.parse(run.startedAt)) / 1000);
    replace(this.eta, left === null ? '' : `about ${duration(Math.max(1, left))} left`);
  }
}
