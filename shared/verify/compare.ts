// Braze's export of the proof segment against the export's sync state, bucket by bucket. Braze
// knows a user by the identity the export wrote (external_id, or the alias), not by the CI profile
// key the state's buckets hash, so both sides are first spread over temp files by a hash of that
// identity (the state's own bucket count), then each bucket is compared with only that bucket's
// users in memory. Nothing is written to Braze or to the state.
import type { ExportDefinition } from '../exports/schema';
import { BucketFiles, bucketOf, parseBucketState, type SyncStateStore } from '../engine';
import { BrazeUserReader, type ExportedUser } from './braze-user';
import { readUserLines } from './export-files';

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
  /** The mapped fields whose presence differs (stale), where they can be told. */
  fields: string[];
}

export type KindCounts = Record<DriftKind, number>;
export interface DriftCounts extends KindCounts {
  /** Profiles the sync state says Braze holds. */
  inState: number;
  /** Users in Braze's export of the proof segment. */
  inBraze: number;
  /** Profiles whose Braze object is exactly what was last sent. */
  matched: number;
}

export interface Comparison {
  counts: DriftCounts;
  /** Drift by CI segment, where the segment can be told (a user missing from Braze altogether shows none). */
  bySegment: Record<string, KindCounts>;
}

const noDrift = (): KindCounts => ({ missing: 0, extra: 0, stale: 0, unknown: 0 });

/** The field names a state entry's `heldFields` bits name (hex, 4 fields a digit, lowest first; absent: all). */
function heldNames(fields: string[] | undefined, bits: string | undefined): string[] | null {
  if (!fields || bits === undefined) return null;
  return fields.filter((_, i) => {
    const digit = bits[i >> 2];
    return digit !== undefined && ((parseInt(digit, 16) >> (i & 3)) & 1) === 1;
  });
}

/** The state's entries, spread by identity over `count` temp files: [identity, key, fp, heldFields|null] per line. */
async function spreadState(state: SyncStateStore, bucketCount: number, files: BucketFiles, count: number): Promise<number> {
  let entries = 0;
  for (let b = 0; b < bucketCount; b++) {
    const { bytes } = await state.readBucket(b);
    if (!bytes) continue;
    const bucket = parseBucketState(bytes);
    for (const [key, e] of bucket.entries) {
      files.write(bucketOf(e.identity, count), JSON.stringify([e.identity, key, e.fp, heldNames(bucket.fields, e.heldFields)]));
      entries++;
    }
  }
  files.close();
  return entries;
}

async function spreadUsers(paths: string[], reader: BrazeUserReader, files: BucketFiles, count: number): Promise<number> {
  let users = 0;
  for (const file of paths) {
    await readUserLines(file, (line) => {
      const identity = reader.identityOf(JSON.parse(line) as ExportedUser);
      files.write(bucketOf(identity, count), `${JSON.stringify(identity)}\t${line}`);
      users++;
    });
  }
  files.close();
  return users;
}

export async function compareWithState(input: {
  definition: ExportDefinition;
  state: SyncStateStore;
  files: string[];
  dir: string;
  onDrift: (row: DriftRow) => void;
}): Promise<Comparison> {
  const { definition: def } = input;
  const reader = new BrazeUserReader(def);
  const manifest = await input.state.readManifest();
  const count = Math.max(1, manifest?.bucketCount ?? 1);
  const stateFiles = new BucketFiles(input.dir, 'verify-state');
  const userFiles = new BucketFiles(input.dir, 'verify-braze');
  const counts: DriftCounts = { inState: 0, inBraze: 0, matched: 0, ...noDrift() };
  const bySegment: Record<string, KindCounts> = Object.fromEntries(def.segments.map((s) => [s, noDrift()]));
  counts.inState = manifest ? await spreadState(input.state, manifest.bucketCount, stateFiles, count) : 0;
  counts.inBraze = await spreadUsers(input.files, reader, userFiles, count);
  const drift = (kind: DriftKind, identity: string, key: string, segments: number[], fields: string[] = []) => {
    counts[kind]++;
    for (const i of segments) bySegment[def.segments[i]!]![kind]++;
    input.onDrift({ kind, identity, key, segments: segments.map((i) => def.segments[i]!), fields });
  };
  for (let b = 0; b < count; b++) {
    const users = new Map<string, ExportedUser>();
    await userFiles.read(b, (line) => {
      const tab = line.indexOf('\t'); // the identity's JSON holds no raw tab
      users.set(JSON.parse(line.slice(0, tab)) as string, JSON.parse(line.slice(tab + 1)) as ExportedUser);
    });
    await stateFiles.read(b, (line) => {
      const [identity, key, fp, held] = JSON.parse(line) as [string, string, string, string[] | null];
      const u = users.get(identity);
      users.delete(identity);
      if (!u) return drift('missing', identity, key, []);
      const compared = reader.compare(u, identity, fp);
      if (compared.same) return void counts.matched++;
      const shown = reader.segmentsOf(u);
      const sent = compared.sentSegments;
      if (!sent) {
        const now = reader.heldFields(u);
        const fields = held ? [...held.filter((f) => !now.includes(f)), ...now.filter((f) => !held.includes(f))] : [];
        return drift('stale', identity, key, shown, fields);
      }
      const gone = sent.filter((i) => !shown.includes(i));
      const added = shown.filter((i) => !sent.includes(i));
      if (gone.length) drift('missing', identity, key, gone);
      if (added.length) drift('extra', identity, key, added);
    });
    for (const [identity, u] of users) drift('unknown', identity, '', reader.segmentsOf(u));
  }
  return { counts, bySegment };
}
