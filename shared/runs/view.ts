// A run as the API shows it (DESIGN.md §4 example), without engine internals.
import { emptyBucketCounts } from '../engine';
import type { RunRecord } from '../store/runs';

export function runView(run: RunRecord) {
  return {
    id: run.id,
    exportId: run.exportId,
    trigger: run.trigger,
    kind: run.kind ?? 'export',
    then: run.then ?? null,
    queuedBy: run.queuedBy,
    queuedByPrincipal: run.queuedByPrincipal ?? null,
    fullSync: run.fullSync,
    status: run.status,
    phase: run.phase ?? null,
    snapshot: run.snapshot,
    queuedAt: run.queuedAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    counts: run.counts ?? { rowsRead: 0, ...emptyBucketCounts() },
    requests: run.requests ?? { sent: 0, retried: 0, rateLimited: 0 },
    segments: run.segments ?? {},
    omittedAttributes: run.omittedAttributes ?? {},
    progress: run.buckets ? { bucketsDone: run.buckets.done.length, bucketsTotal: run.buckets.total } : null,
    attempts: run.attempts,
    cancelRequested: run.cancelRequested ?? null,
    /** Why the guard held it and what it would do; kept once approved or dismissed. */
    held: run.held ?? null,
    approved: run.approved ?? null,
    waitingFor: run.waitingFor ?? null,
    /** Set while (and after) the run waited for the next hour of its connection's hourly request cap. */
    resumesAt: run.resumesAt ?? null,
    timings: run.timings ?? null,
    errors: run.errors,
    warnings: run.warnings ?? [],
    rejectedReport: run.rejectedReport ? `/api/runs/${run.id}/rejected` : null,
    /** A verification run's outcome: drift counts (by segment), the drift CSV, its repair. */
    verify: run.verify
      ? {
          proofSegmentId: run.verify.proofSegmentId ?? null,
          sample: run.verify.sample ?? null,
          sampled: run.verify.sampled ?? null,
          confidence: run.verify.confidence ?? null,
          delivery: run.verify.delivery ?? null,
          objectPrefix: run.verify.objectPrefix ?? null,
          requestedAt: run.verify.requestedAt ?? null,
          comparedAt: run.verify.comparedAt ?? null,
          counts: run.verify.counts ?? null,
          bySegment: run.verify.bySegment ?? null,
          summary: run.verify.summary ?? null,
          driftReport: run.verify.driftReport ? `/api/runs/${run.id}/drift` : null,
          repair: run.verify.repair ?? null,
        }
      : null,
    repairOf: run.repairOf ?? null,
  };
}
