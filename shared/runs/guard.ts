// The guard (DESIGN.md §1.6): before an unattended run sends anything, the same engine reads and
// diffs its snapshot with nothing leaving the app. A run that would withdraw a large share of the
// audience, empty a segment, create many new Braze profiles, resend most of the export after a
// settings change, or cost more than the export allows is held with these figures until a person
// approves it (then it sends exactly this) or dismisses it (nothing is sent).
// A change run is weighed as it goes (engine/run/weighing.ts): its own buckets are prepared and set
// aside, then sent if the guard lets it go, so its snapshot is read and diffed once. A run that
// resends about the whole snapshot (see RunGuard.plan) is weighed by a dry run before it
// (preview/dry-run.ts): its objects would be too much to set aside on the temp disk.
import { definitionFingerprint, SyncStateStore, type Manifest, type RunCounts, type WeighedRun, type Weighing } from '../engine';
import { guardOf, type ExportDefinition, type Guard } from '../exports/schema';
import { dataPointsOf } from '../preview/data-points';
import { dryRunExport, type DryRunDeps } from '../preview/dry-run';
import type { Snapshot } from '../snapshot/locate';
import { CONTAINERS } from '../store/clients';
import type { ExportStateRepo } from '../store/export-state';
import type { HeldFigures } from '../store/runs';
import type { Attempt } from './attempt';
import { runEndedLine } from './run-log';
import { thousands } from '../thousands';

export type Figures = Omit<HeldFigures, 'at' | 'reasons'>;

const pct = (part: number, whole: number) => (whole > 0 ? (100 * part) / whole : 0);

/** What the run would do, as weighed (counts as if Braze took every object). */
interface Weighed {
  counts: Pick<RunCounts, 'profiles' | 'sent' | 'newProfiles' | 'unchanged' | 'removed'>;
  segments: Record<string, { rows: number }>;
  requests: number;
  dataPoints: number;
}

/** What the run would do, against what Braze holds of the export now. */
export function figuresOf(
  weighed: Weighed,
  snapshotId: string,
  lastSegmentRows: Record<string, number> | null,
  settings: { definition: string; changed: boolean },
): Figures {
  const c = weighed.counts;
  const changed = c.sent - c.newProfiles;
  const segmentRows = weighed.segments;
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
    requests: weighed.requests,
    dataPoints: weighed.dataPoints,
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
      reasons.push(
        `a first run would create ${thousands(p.total)} profiles in Braze (limit ${thousands(guard.firstRunMaxProfiles)})`,
      );
  } else {
    if (guard.maxLeavingPercent !== null && pct(p.leaving, p.members) > guard.maxLeavingPercent)
      reasons.push(
        `${thousands(p.leaving)} of the ${thousands(p.members)} members (${pct(p.leaving, p.members).toFixed(1)} %) would lose their membership (limit ${guard.maxLeavingPercent} %)`,
      );
    if (guard.holdEmptiedSegment)
      for (const s of f.emptiedSegments)
        reasons.push(`segment ${s} has no rows in this snapshot, though it had some in the last export`);
    if (guard.maxNewProfiles !== null && p.new > guard.maxNewProfiles)
      reasons.push(
        `${thousands(p.new)} profiles would be new to Braze from this export (limit ${thousands(guard.maxNewProfiles)})`,
      );
    if (f.settingsChanged && guard.maxResendPercent !== null && pct(p.changed, p.members) > guard.maxResendPercent)
      reasons.push(
        `changed settings would send ${thousands(p.changed)} of the ${thousands(p.members)} members again (${pct(p.changed, p.members).toFixed(1)} %, limit ${guard.maxResendPercent} %)`,
      );
  }
  // Cost caps are the export's own: a first run too.
  if (guard.maxDataPoints !== null && f.dataPoints > guard.maxDataPoints)
    reasons.push(`it would cost ${thousands(f.dataPoints)} Braze data points (limit ${thousands(guard.maxDataPoints)})`);
  if (guard.maxRequests !== null && f.requests > guard.maxRequests)
    reasons.push(`it would take ${thousands(f.requests)} Braze requests (limit ${thousands(guard.maxRequests)})`);
  return reasons;
}

/** How a run is weighed: not at all, by a dry run before it, or as it goes (see above). */
export type GuardPlan = 'none' | 'dry-run' | 'as-it-goes';

/** What the guard needs of a run it weighs. */
export interface GuardedRun {
  fullSync: boolean;
  /** A cancel: the dry run stops, and the run with it. */
  shouldStop: () => boolean;
  /** Past it, the run is held unweighed: a snapshot that cannot be weighed in time waits for a person. */
  deadline: number;
  /** The pace Braze will take the run's requests at (a dry run takes the run's path). */
  pace: () => Promise<number>;
}

const UNWEIGHED: Record<NonNullable<WeighedRun['unweighed']>, string> = {
  time: "the snapshot could not be weighed within half of the worker's time box: approve to send it unweighed",
  disk: "the snapshot's changes could not be set aside on the instance's temporary storage to be weighed: approve to send them unweighed",
};

export class RunGuard {
  constructor(private readonly deps: DryRunDeps & { state: ExportStateRepo }) {}

  /**
   * No weighing where no threshold could hold the run: every limit off, or a first run (no sync
   * state) without a cap of its own. As it goes where the run sends what changed since an earlier
   * run under the same settings. Else a dry run first: a first run with a cap, a full sync, new
   * settings, or an export whose first run never finished resend about the whole snapshot, too much
   * to set aside on the temp disk (and a dry run leaves the sync state as it is, its manifest too).
   */
  async plan(
    record: ExportDefinition & { id: string },
    baseUrl: string,
    fullSync: boolean,
    /** The sync state's manifest, when the caller reads it anyway (the engine opens the state with it). */
    manifestRead?: Promise<Manifest | null>,
  ): Promise<GuardPlan> {
    const guard = guardOf(record);
    const caps = guard.firstRunMaxProfiles !== null || guard.maxDataPoints !== null || guard.maxRequests !== null;
    const changeLimits =
      guard.maxLeavingPercent !== null ||
      guard.holdEmptiedSegment ||
      guard.maxNewProfiles !== null ||
      guard.maxResendPercent !== null;
    if (!caps && !changeLimits) return 'none';
    const syncState = new SyncStateStore(this.deps.appBlobs.getContainerClient(CONTAINERS.state), record.id);
    // Both at once: one round trip before the run reads a row, not two.
    const [manifest, exportState] = await Promise.all([manifestRead ?? syncState.readManifest(), this.deps.state.get(record.id)]);
    if (manifest === null) return caps ? 'dry-run' : 'none';
    const finishedBefore = !!exportState?.value.lastSegmentRows;
    const sameSettings = manifest.definition === definitionFingerprint(record, baseUrl);
    return !fullSync && sameSettings && finishedBefore ? 'as-it-goes' : 'dry-run';
  }

  /**
   * A dry run of the snapshot: the figures and reasons to hold the run for, or null when it may go
   * (or was cancelled: the run then stops too).
   */
  async dryRun(
    record: ExportDefinition & { id: string },
    baseUrl: string,
    snapshot: Snapshot,
    run: GuardedRun,
  ): Promise<HeldFigures | null> {
    const pastDeadline = () => Date.now() > run.deadline;
    const stop = () => run.shouldStop() || pastDeadline();
    const dry = await dryRunExport(this.deps, record, baseUrl, snapshot, run.fullSync, stop, await run.pace());
    const figures = await this.figures(record, baseUrl, snapshot, {
      counts: dry.progress.counts,
      segments: dry.progress.segments,
      requests: dry.progress.requests.sent,
      dataPoints: dry.transport.dataPoints,
    });
    if (dry.stopped || !dry.complete)
      return pastDeadline() ? { at: new Date().toISOString(), reasons: [UNWEIGHED.time], ...figures } : null;
    return this.verdict(record, figures);
  }

  /**
   * The engine's weighing of the run as it goes (EngineInput.weigh). `verdict()`: undefined until
   * the run's buckets are set aside and weighed; then the figures and reasons it is held for, or
   * null when it goes.
   */
  asItGoes(
    record: ExportDefinition & { id: string },
    baseUrl: string,
    snapshot: Snapshot,
    deadline: number,
  ): Weighing & { verdict: () => HeldFigures | null | undefined } {
    let dataPoints = 0;
    let held: HeldFigures | null | undefined;
    return {
      deadline,
      object: (bytes) => {
        dataPoints += dataPointsOf(
          JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8')) as Record<string, unknown>,
        );
      },
      decide: async (weighed) => {
        const figures = await this.figures(record, baseUrl, snapshot, { ...weighed, dataPoints });
        held = weighed.unweighed
          ? { at: new Date().toISOString(), reasons: [UNWEIGHED[weighed.unweighed]], ...figures }
          : this.verdict(record, figures);
        return held === null;
      },
      verdict: () => held,
    };
  }

  private async figures(
    record: ExportDefinition & { id: string },
    baseUrl: string,
    snapshot: Snapshot,
    weighed: Weighed,
  ): Promise<Figures> {
    const definition = definitionFingerprint(record, baseUrl);
    const state = (await this.deps.state.get(record.id))?.value;
    const settings = { definition, changed: !!state?.lastDefinition && state.lastDefinition !== definition };
    return figuresOf(weighed, snapshot.id, state?.lastSegmentRows ?? null, settings);
  }

  private verdict(record: ExportDefinition, figures: Figures): HeldFigures | null {
    const reasons = crossedThresholds(figures, guardOf(record));
    return reasons.length ? { at: new Date().toISOString(), reasons, ...figures } : null;
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
