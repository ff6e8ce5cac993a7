// Drift as a verification reports it: its kinds, its rows (ids, segments and fields, never a value),
// and its counts in all and by CI segment.
import type { ExportDefinition } from '../exports/schema';

/**
 * missing: the state says Braze holds a membership it does not show (user gone, or a segment gone);
 * extra: a profile we sent shows a segment we did not send; stale: a mapped value is not what we
 * last sent; unknown: a user in the Braze segment we never sent.
 */
export type DriftKind = 'missing' | 'extra' | 'stale' | 'unknown';
export const DRIFT_KINDS: DriftKind[] = ['missing', 'extra', 'stale', 'unknown'];

export interface DriftRow {
  kind: DriftKind;
  /** How Braze knows the user: e:<external_id>, a:<alias_name> or b:<braze_id>. */
  identity: string;
  /** The CI profile key in the sync state ('' for unknown users). */
  key: string;
  /** The CI segments concerned, where they can be told. */
  segments: string[];
  /**
   * Stale: the mapped fields whose value in Braze is not the one last sent (and the membership
   * attribute(s), when the membership differs too); only those whose presence differs when what was
   * sent could not be read back from the snapshot.
   */
  fields: string[];
}

export type KindCounts = Record<DriftKind, number>;
export interface DriftCounts extends KindCounts {
  /** Profiles the sync state says Braze holds. */
  inState: number;
  /** Users in Braze's export of the proof segment. */
  inBraze: number;
  /** Profiles whose Braze object is exactly what was last sent (in the fields Braze exports). */
  matched: number;
}

export const noDrift = (): KindCounts => ({ missing: 0, extra: 0, stale: 0, unknown: 0 });

/** The stale and missing profiles looked up in the snapshot the state was built from, how many could not be told, and why. */
export interface SentValues {
  snapshotId: string | null;
  looked: number;
  untold: number;
  why?: string;
}

export type Drift = (kind: DriftKind, identity: string, key: string, segments: number[], fields?: string[]) => void;

/** Counts a drift (in all, and by segment) and hands its row on. */
export function driftCounter(
  def: ExportDefinition,
  counts: KindCounts,
  bySegment: Record<string, KindCounts>,
  onDrift: (row: DriftRow) => void,
): Drift {
  return (kind, identity, key, segments, fields = []) => {
    counts[kind]++;
    for (const i of segments) bySegment[def.segments[i]!]![kind]++;
    onDrift({ kind, identity, key, segments: segments.map((i) => def.segments[i]!), fields });
  };
}
