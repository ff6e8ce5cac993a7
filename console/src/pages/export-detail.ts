// One export: the live run at the top, its actions (run, full sync with its cost first, preview,
// cancel, duplicate, detach, delete — each saying what happens in Braze), what it writes in Braze
// and how to build the Braze segment from it, and its run history with a page per run. While a
// cleanup run withdraws its membership (deleting / detaching), the page follows that run and
// leaves for the list once the export is gone, or offers to retry if the cleanup failed.
import { api, ApiError, type Me } from '../api';
import { setFlash, h, notice, replace, say, statusLine } from '../dom';
import { busy } from '../forms';
import { actions, type Act } from './export/actions';
import { cleanupFailed, cleanupOf, cleanupProgress, type Cleanup } from './export/cleanup';
import { PAGE, runsHistory } from './export/history';
import { inBraze, summary } from './export/in-braze';
import { ACTIVE, LiveSection } from './export/live-section';
import { askRemoval } from './export/removal';
import { proofPanel } from './export/proof';

const POLL_MS = 1000;

export async function exportDetailPage(main: HTMLElement, me: Me, id: string, stillShown: () => boolean): Promise<void> {
  const exp = await api('GET', `/api/exports/${id}`);
  const runs: any[] = (await api('GET', `/api/exports/${id}/runs`)).value;
  const page = new ExportDetail(main, me, id, stillShown, exp, runs);
  page.render();
  await page.refresh();
}

/** The page's state between polls: the export, its runs, the slots drawn into, and what is followed. */
class ExportDetail {
  private readonly errorSlot = h('div');
  private readonly history = h('section', { 'aria-labelledby': 'history-title' });
  private readonly previewSlot = h('div');
  private readonly cleanupSlot = h('div');
  private readonly actionsSlot = h('div');
  private readonly proofSlot = h('div');
  private proofDrawn = '';
  private readonly live: LiveSection;
  private historyPage = 0;
  /** Runs past the newest page, where the API offers a nextLink. */
  private older: any[] = [];
  private nextLink: string | null = null;
  private timer: number | undefined;
  private following: Cleanup | null = null;
  private historyDrawn = '';
  private readonly act: Act;

  constructor(
    private readonly main: HTMLElement,
    private readonly me: Me,
    private readonly id: string,
    private readonly stillShown: () => boolean,
    private exp: any,
    private runs: any[],
  ) {
    this.live = new LiveSection(me, id, this.previewSlot, this.poll);
    this.act = {
      remove: this.removeExport,
      refresh: this.poll,
      preview: this.previewSlot,
      error: this.showError,
    };
  }

  private readonly showError = (e: unknown) => replace(this.errorSlot, e ? notice((e as Error).message, 'error') : null);

  /** Refreshes now, showing what fails. */
  private readonly poll = () => void this.refresh().catch(this.showError);

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = window.setTimeout(this.poll, POLL_MS);
  }

  /** Asks (naming what happens in Braze), then deletes or detaches; a cleanup run is then followed. */
  private readonly removeExport = async (what: 'delete' | 'detach'): Promise<void> => {
    const keep = await askRemoval(this.exp, this.runs, what);
    if (keep === null) return;
    const path =
      what === 'delete'
        ? `/api/exports/${this.id}${keep ? '?keepBrazeData=true' : ''}`
        : `/api/exports/${this.id}/detach${keep ? '?keepBrazeData=true' : ''}`;
    const r = await api(what === 'delete' ? 'DELETE' : 'POST', path, what === 'delete' ? undefined : {}, {
      'If-Match': this.exp.etag,
    });
    if (r?.cleanupRun) {
      this.following = { runId: r.cleanupRun.id, then: what };
      this.render();
      await this.refresh();
      // The button that asked is gone with the actions: focus goes to what is happening instead.
      if (!document.activeElement || document.activeElement === document.body)
        this.cleanupSlot.querySelector<HTMLElement>('.notice')?.focus();
      return;
    }
    if (what === 'delete') return this.leave(`“${this.exp.name}” deleted${keep ? '; its data stays in Braze' : ''}.`);
    say(`“${this.exp.name}” detached${keep ? '; its data stays in Braze' : ''}.`);
    this.exp = r;
    this.render();
  };

  private leave(message: string): void {
    setFlash(message);
    location.hash = '#/exports';
  }

  render(): void {
    const cleanup = this.following ?? cleanupOf(this.exp, this.runs);
    replace(
      this.main,
      h('p', {}, h('a', { href: '#/exports' }, '← Exports')),
      h('h1', { tabindex: '-1' }, this.exp.name),
      statusLine,
      this.errorSlot,
      this.cleanupSlot,
      cleanup ? null : this.actionsSlot,
      cleanup ? null : this.live.element,
      cleanup ? null : this.previewSlot,
      inBraze(this.exp),
      cleanup ? null : this.proofSlot,
      summary(this.exp),
      this.history,
    );
    replace(this.actionsSlot, this.me.canWrite && !cleanup ? actions(this.exp, this.runs, this.act) : null);
  }

  private renderCleanup(run: any | null, then: 'delete' | 'detach'): void {
    const failed = run && !ACTIVE.has(run.status) && run.status !== 'succeeded';
    if (!failed) return replace(this.cleanupSlot, cleanupProgress(run, then));
    const retry = h('button', { type: 'button' }, then === 'delete' ? 'Retry deleting' : 'Retry detaching');
    retry.addEventListener('click', () =>
      busy(retry, () => {
        this.following = null;
        return this.removeExport(then).catch(this.showError);
      }),
    );
    say(`Withdrawing the membership from Braze failed; the export was not ${then === 'delete' ? 'deleted' : 'detached'}.`);
    replace(this.cleanupSlot, cleanupFailed(run, then, this.me.canWrite ? retry : null));
    this.following = null;
    // An export the API still holds as deleting / detaching is left alone until the cleanup is retried.
    const held = this.exp.status === 'deleting' || this.exp.status === 'detaching';
    replace(this.actionsSlot, this.me.canWrite && !held ? actions(this.exp, this.runs, this.act) : null);
    if (!this.actionsSlot.isConnected) this.cleanupSlot.after(this.actionsSlot);
  }

  async refresh(): Promise<void> {
    clearTimeout(this.timer);
    if (!this.stillShown()) return;
    const gone = await this.load();
    if (!this.stillShown()) return;
    const cleanup = this.following ?? cleanupOf(this.exp, this.runs);
    if (gone) {
      if (cleanup?.then === 'delete' || this.following)
        return this.leave(`“${this.exp.name}” deleted; its membership was withdrawn from Braze.`);
      throw new Error('This export was deleted (by someone else, or from another page).');
    }
    if (cleanup && this.showCleanup(cleanup)) return;
    replace(this.cleanupSlot);
    if (this.runs.length) this.actionsSlot.querySelector('.first-run')?.remove();
    // Back from following a cleanup (a detach done): the page shows the export as it is now.
    if (!this.live.element.isConnected) this.render();
    if (this.live.show(this.runs)) this.schedule();
    this.drawProof();
    this.drawHistory();
  }

  /** Reads the runs (and the export, when it may have changed); true when the export is gone. */
  private async load(): Promise<boolean> {
    try {
      // While a run goes, only the runs change; the export is read again when a cleanup or an end may have changed it.
      const needExport = !this.live.going || this.following !== null || cleanupOf(this.exp, this.runs) !== null;
      const [e, r] = await Promise.all([
        needExport ? api('GET', `/api/exports/${this.id}`) : Promise.resolve(this.exp),
        api('GET', `/api/exports/${this.id}/runs`),
      ]);
      this.exp = e;
      this.runs = r.value;
      if (this.older.length === 0) this.nextLink = r.nextLink ?? null;
      return false;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
      return true;
    }
  }

  /** Follows a cleanup run; true while it is still shown (false once a detach is done). */
  private showCleanup(cleanup: Cleanup): boolean {
    const run = this.runs.find((r) => r.id === cleanup.runId) ?? null;
    if (cleanup.then === 'detach' && this.exp.status === 'inactive' && run?.status === 'succeeded') {
      this.following = null;
      say(`“${this.exp.name}” detached; its membership was withdrawn from Braze.`);
      this.render();
      return false;
    }
    if (!this.cleanupSlot.isConnected || this.actionsSlot.isConnected) this.render();
    this.renderCleanup(run, cleanup.then);
    if (!run || ACTIVE.has(run.status) || run.status === 'succeeded') this.schedule();
    return true;
  }

  /** The Braze proof panel, drawn again only when the verifications or the export changed (focus survives polling). */
  private drawProof(): void {
    const drawn = JSON.stringify([this.exp.etag, this.runs.filter((r) => r.kind === 'verify' || ACTIVE.has(r.status))]);
    if (drawn === this.proofDrawn && this.proofSlot.firstChild) return;
    this.proofDrawn = drawn;
    replace(this.proofSlot, proofPanel(this.exp, this.runs, this.me, this.poll, this.showError));
  }

  /** The history is drawn again only when it changed: a live run's figures move in the live
   * section, so focus on a history link survives the polling. */
  private drawHistory(): void {
    const drawn = JSON.stringify([
      this.runs.map((r) => (ACTIVE.has(r.status) ? [r.id, r.status] : [r.id, r.status, r.finishedAt])),
      this.older.length,
      this.nextLink,
      this.historyPage,
    ]);
    if (drawn === this.historyDrawn) return;
    this.historyDrawn = drawn;
    replace(
      this.history,
      ...runsHistory([...this.runs, ...this.older], this.historyPage, (p) => {
        this.historyPage = p;
        this.poll();
      }),
      this.nextLink ? h('button', { type: 'button', onclick: () => void this.loadOlder() }, 'Load older runs') : null,
    );
  }

  /** The next page of older runs, shown at once. */
  private loadOlder(): Promise<void> {
    return api('GET', this.nextLink!)
      .then((more) => {
        this.older = [...this.older, ...more.value];
        this.nextLink = more.nextLink ?? null;
        this.historyPage = Math.floor((this.runs.length + this.older.length - 1) / PAGE);
        return this.refresh();
      })
      .catch(this.showError);
  }
}
