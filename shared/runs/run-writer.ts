// Writes of a run row by the worker that runs it: each conditional on the ETag it last wrote, so it
// never overwrites what someone else wrote since. What others may write: a cancel request (API),
// a stall re-queue (timer). The worker keeps its own progress, adopts a cancel request, and learns
// that it lost the run when someone else finished it.
import { preconditionFailed } from '../errors';
import { FINISHED, type RunRecord, type RunsRepo } from '../store/runs';

export class RunWriter {
  private queue: Promise<void> = Promise.resolve();
  /** The cancel request that arrived (POST /api/runs/{id}/cancel), if any. */
  private cancel: RunRecord['cancelRequested'] = null;
  /** Someone else finished the run: this worker must stop and write nothing more. */
  takenOver = false;

  constructor(
    private readonly runs: RunsRepo,
    public run: RunRecord,
    private etag: string,
  ) {
    this.cancel = run.cancelRequested ?? null;
  }

  get cancelRequested(): boolean {
    return !!this.cancel;
  }

  /** Writes `next` (one write at a time, in order); returns once it is stored or the run was taken over. */
  write(next: RunRecord): Promise<void> {
    const write = this.queue.then(() => this.put(next));
    this.queue = write.catch(() => undefined);
    return write;
  }

  private async put(next: RunRecord): Promise<void> {
    if (this.takenOver) return;
    // Once this worker has written the run finished, a late copy of it (a heartbeat queued behind
    // the last write) must not make it `running` again: the timer would take it for a stalled run.
    if (FINISHED.includes(this.run.status) && !FINISHED.includes(next.status)) return;
    for (let attempt = 0; attempt <= 5; attempt++) {
      // A cancel request once seen stays on the row, whatever copy the worker writes.
      const stored = await this.runs.updateIfUnchanged(
        this.cancel && !next.cancelRequested ? { ...next, cancelRequested: this.cancel } : next,
        this.etag,
      );
      if (stored) {
        this.run = stored.value;
        this.etag = stored.etag;
        return;
      }
      const fresh = await this.runs.get(next.id);
      // Finished by someone else, or another worker started an attempt of its own: the run is theirs.
      if (FINISHED.includes(fresh.value.status) || fresh.value.attempts > next.attempts) {
        this.takenOver = true;
        return;
      }
      if (fresh.value.cancelRequested) this.cancel = fresh.value.cancelRequested;
      this.etag = fresh.etag;
    }
    throw preconditionFailed();
  }
}
