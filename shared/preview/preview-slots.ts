// How many previews this instance runs at once. A preview reads and diffs a whole snapshot (about
// as much memory and CPU as a run's reading), so an instance takes at most two at a time, and one
// while a run executes here: a Contributor previewing many copies of an export cannot take the
// instance down, or starve the run. Beyond that: 429 with Retry-After.
export const PREVIEW_LIMITS = {
  perInstance: 2,
  /** While a run executes on this instance. */
  whileRunning: 1,
  retryAfterSeconds: 30,
  /** A preview still busy this long is stopped: below the 230 s at which Azure's front end cuts an HTTP answer. */
  deadlineMs: 200_000,
};

let previews = 0;
let runs = 0;

/** A run executes on this instance until the returned function is called. */
export function runExecuting(): () => void {
  runs++;
  let done = false;
  return () => {
    if (!done) runs--;
    done = true;
  };
}

/** A preview slot (call the returned function to give it back), or null when the instance has none free. */
export function takePreviewSlot(): (() => void) | null {
  if (previews >= (runs > 0 ? PREVIEW_LIMITS.whileRunning : PREVIEW_LIMITS.perInstance)) return null;
  previews++;
  let done = false;
  return () => {
    if (!done) previews--;
    done = true;
  };
}
