// The guard (DESIGN.md §1.6): before an unattended run sends anything, the same engine reads and
// diffs its snapshot with nothing leaving the app (preview/dry-run.ts). A run that would withdraw a
// large share of the audience, empty a segment, create many new Braze profiles, resend most of the
// export after a settings change, or cost more than the export allows is held with these figures
// until a person approves it (then it sends exactly this) or dismisses it (nothing is sent).
import { definitionFingerprint, SyncStateStore } from '../engine';
import { guardOf, type ExportDefinition, type Guard } from '../exports/schema';
import { dryRunExport, type DryRun, type DryRunDeps } from '../preview/dry-run';
import type { Snapshot } from '../snapshot/locate';
import { CONTAINERS } from '../store/clients';
import type { ExportStateRepo } from '../store/export-state';
import type { HeldFigures } from '../store/runs';
import type { Attempt } from './attempt';
import { runEndedLine } from './run-log';

export type Figures = Omit<HeldFigures, 'at' | 'reasons'>;

const n = (x: number) => x.toLocaleString('en-US');
const pct = (part: number, whole: number) => (whole > 0 ? (100 * part) / whole : 0);

/** What a dry run says the run would do, against what Braze holds of the export now. */
export function figuresOf(
  dry: DryRun,
  snapshotId: string,
  lastSegmentRows: Record<string, number> | null,
  settings: { definition: string; changed: boolean },
): Figures {
  const c = dry.progress.counts;
  const changed = c.sent - c.newProfiles;
  const segmentRows = dry.progress.segments;
  return {
    snapshotId,
    definition: settings.definition,
    profiles: {
      total: c.profiles,
      // Profiles Braze holds for this export now: those that stay (changed or not) and those that leave.
      members: c.unchanged + changed + c.removed,
      new: c.newProfiles,
      changed,
      unchanged: c.unchanged,
      leaving: c.removed,
    },
    emptiedSegments: Object.keys(lastSegmentRows ?? {}).filter((s) => lastSegmentRows![s]! > 0 && segmentRows[s]?.rows === 0),
    requests: dry.progress.requests.sent,
    dataPoints: dry.transport.dataPoints,
    settingsChanged: settings.changed,
  };
}

/** Each threshold the run crosses, in words a person can act on; none = the run may go. */
export function crossedThresholds(f: Figures, guard: Guard): string[] {
  const p = f.profiles;
  const reasons: string[] = [];
  if (p.members === 0) {
    // The first run is the one expected to create everything: held only past a cap the export sets.
    if (guard.firstRunMaxProfiles !== null && p.total > guard.firstRunMaxProfiles)
      reasons.push(`a first run would create ${n(p.total)} profiles in Braze (limit ${n(guard.firstRunMaxProfiles)})`);
  } else {
    if (guard.maxLeavingPercent !== null && pct(p.leaving, p.members) > guard.maxLeavingPercent)
      reasons.push(
        `${n(p.leaving)} of the ${n(p.members)} members (${pct(p.leaving, p.members).toFixed(1)} %) would lose their membership (limit ${guard.maxLeavingPercent} %)`,
      );
    if (guard.holdEmptiedSegment)
      for (const s of f.emptiedSegments)
        reasons.push(`segment ${s} has no rows in this snapshot, though it had some in the last export`);
    if (guard.maxNewProfiles !== null && p.new > guard.maxNewProfiles)
      reasons.push(`${n(p.new)} profiles would be new to Braze from this export (limit ${n(guard.maxNewProfiles)})`);
    if (f.settingsChanged && guard.maxResendPercent !== null && pct(p.changed, p.members) > guard.maxResendPercent)
      reasons.push(
        `changed settings would send ${n(p.changed)} of the ${n(p.members)} members again (${pct(p.changed, p.members).toFixed(1)} %, limit ${guard.maxResendPercent} %)`,
      );
  }
  // Cost caps are the export's own: a first run too.
  if (guard.maxDataPoints !== null && f.dataPoints > guard.maxDataPoints)
    reasons.push(`it would cost ${n(f.dataPoints)} Braze data points (limit ${n(guard.maxDataPoints)})`);
  if (guard.maxRequests !== null && f.requests > guard.maxRequests)
    reasons.push(`it would take ${n(f.requests)} Braze requests (limit ${n(guard.maxRequests)})`);
  return reasons;
}

export class RunGuard {
  constructor(private readonly deps: DryRunDeps & { state: ExportStateRepo }) {}

  /**
   * The figures and reasons to hold the run for, or null when it may go. The dry run stops when
   * `shouldStop` says so (a cancel: the run then stops too) or at `deadline`: a snapshot that cannot
   * be weighed in time is held, for a person to approve unweighed.
   */
  async evaluate(
    record: ExportDefinition & { id: string },
    baseUrl: string,
    snapshot: Snapshot,
    run: { fullSync: boolean; shouldStop: () => boolean; deadline: number; pace: () => Promise<number> },
  ): Promise<HeldFigures | null> {
    const guard = guardOf(record);
    const definition = definitionFingerprint(record, baseUrl);
    const syncState = new SyncStateStore(this.deps.appBlobs.getContainerClient(CONTAINERS.state), record.id);
    // No dry run where no threshold could hold the run: every limit off, or a first run (no sync
    // state) without a cap of its own.
    const caps = guard.firstRunMaxProfiles !== null || guard.maxDataPoints !== null || guard.maxRequests !== null;
    const changeLimits =
      guard.maxLeavingPercent !== null ||
      guard.holdEmptiedSegment ||
      guard.maxNewProfiles !== null ||
      guard.maxResendPercent !== null;
    if (!caps && (!changeLimits || (await syncState.readManifest()) === null)) return null;
    const state = (await this.deps.state.get(record.id))?.value;
    const pastDeadline = () => Date.now() > run.deadline;
    const stop = () => run.shouldStop() || pastDeadline();
    const dry = await dryRunExport(this.deps, record, baseUrl, snapshot, run.fullSync, stop, await run.pace());
    const settings = { definition, changed: !!state?.lastDefinition && state.lastDefinition !== definition };
    const figures = figuresOf(dry, snapshot.id, state?.lastSegmentRows ?? null, settings);
    const at = new Date().toISOString();
    if (dry.stopped || !dry.complete) {
      if (!pastDeadline()) return null; // cancelled: the run stops on its own
      return {
        at,
        reasons: ["the snapshot could not be weighed within half of the worker's time box: approve to send it unweighed"],
        ...figures,
      };
    }
    const reasons = crossedThresholds(figures, guard);
    return reasons.length ? { at, reasons, ...figures } : null;
  }
}

/**
 * Holds the run: nothing was sent, the export stays claimed (the timer does not queue it again),
 * and the run waits for approve (it then sends exactly this, from the same pinned snapshot) or
 * dismiss. Logged in the shape of a run that ended, so the deployment's alert fires.
 */
export async function holdRun(attempt: Attempt, held: HeldFigures): Promise<void> {
  attempt.run = {
    ...attempt.run,
    status: 'held',
    held,
    // An approval given before covered other figures.
    approved: null,
    heartbeatAt: new Date().toISOString(),
    // It ended as planned, and sent nothing: not an attempt that failed, nor one that sent.
    continuations: (attempt.run.continuations ?? 0) + 1,
    heldAttempts: (attempt.run.heldAttempts ?? 0) + 1,
  };
  await attempt.writer.write(attempt.run);
  attempt.log(
    runEndedLine({ runId: attempt.run.id, exportId: attempt.run.exportId, status: 'held', by: 'worker', errors: held.reasons }),
  );
}
