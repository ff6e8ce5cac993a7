// The export page's "Current run" section: the run going with its live figures, a run the guards
// held, or how the last run ended.
import { type Me } from '../../api';
import { h, replace, say, type Child } from '../../dom';
import { estimates, LiveRun } from '../live-run';
import { heldRun } from './held-run';
import { lastOutcomeText, outcomeLine } from './outcome';

export const ACTIVE = new Set(['queued', 'running']);

export class LiveSection {
  readonly element = h('section', { 'aria-labelledby': 'live-title', class: 'live-section' });
  private readonly title = h('h2', { id: 'live-title', tabindex: '-1' }, 'Current run');
  private current: LiveRun | null = null;
  private lastOutcome: Child = null;

  constructor(
    private readonly me: Me,
    private readonly exportId: string,
    private readonly previewSlot: HTMLElement,
    private readonly refresh: () => void,
  ) {}

  /** Whether a run is followed live (then only the runs change between polls). */
  get going(): boolean {
    return this.current !== null;
  }

  /** Shows the runs' state; true while a run goes (the page polls again). */
  show(runs: any[]): boolean {
    const active = runs.find((r) => ACTIVE.has(r.status));
    if (active) {
      this.showActive(active, runs);
      return true;
    }
    if (runs[0]?.status === 'held') {
      this.current = null;
      replace(this.element, this.title, heldRun(runs[0], this.me, this.refresh));
    } else this.showEnded(runs);
    return false;
  }

  private showActive(active: any, runs: any[]): void {
    if (this.current?.id !== active.id) {
      const previous = runs.find((r) => !ACTIVE.has(r.status) && r.kind !== 'cleanup');
      this.current = new LiveRun(active, this.me, estimates.get(this.exportId), previous?.counts?.rowsRead || undefined);
      // The stale preview folds away while a run goes.
      this.previewSlot.querySelector('details')?.removeAttribute('open');
      replace(this.element, this.title, this.current.element);
    } else this.current!.update(active);
  }

  /** No run going: the run just followed ends with its outcome (focus kept in the section), or the last outcome stays. */
  private showEnded(runs: any[]): void {
    const was = this.current;
    if (was) {
      const ended = runs.find((r) => r.id === was.id);
      const hadFocus = this.element.contains(document.activeElement);
      this.lastOutcome = ended ? outcomeLine(ended, was.cancelled) : null;
      this.current = null;
      if (ended) say(lastOutcomeText(ended, this.lastOutcome), false);
      replace(this.element, this.title, this.lastOutcome, h('p', {}, 'No run is going.'));
      if (hadFocus) this.title.focus();
    } else replace(this.element, this.title, this.lastOutcome, h('p', {}, 'No run is going.'));
  }
}
