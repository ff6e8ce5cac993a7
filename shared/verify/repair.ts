// Repair marks exactly the drifted profiles of a verification as "not what Braze holds" in the sync
// state, so the next export run sends them again — and only them: a state line whose fingerprint
// matches nothing (and with no rows digest to short-cut the diff) is re-written and sent as changed.
// Users in the Braze segment that the export never sent get a state line under a key no CI profile
// has: the next run sees them leave and withdraws their membership, update-only like every withdrawal.
// Each bucket is rewritten with a conditional write on the ETag it was read with.
import type { ContainerClient } from '@azure/storage-blob';
import { bucketOf, parseBucketState, stateLine, stateLinesBytes, StateTakenOver, type SyncStateStore } from '../engine';
import { readDrift } from './drift-report';

/** The fingerprint a repaired line carries: no object writes to it, so the profile counts as changed. */
export const REPAIR_FP = 'repair';
/** The key of a line that withdraws an unknown user's membership (no CI profile key starts so). */
const UNKNOWN_KEY_PREFIX = '\u0000verify-unknown:';

export interface RepairPlan {
  /** Profiles to send again (missing, extra, stale), by bucket. */
  resend: Map<number, Set<string>>;
  /** Users to withdraw membership from (unknown), by bucket, as identities. */
  withdraw: Map<number, string[]>;
  profiles: number;
  withdrawals: number;
  /** Unknown users known only by braze_id: nothing an export writes can address them. */
  unaddressable: number;
}

const add = <T>(map: Map<number, T[] | Set<T>>, bucket: number, value: T, make: () => T[] | Set<T>) => {
  const list = map.get(bucket) ?? make();
  map.set(bucket, list);
  if (Array.isArray(list)) list.push(value);
  else list.add(value);
};

/** What a repair of the drift report `csvName` would do to an export whose state has `bucketCount` buckets. */
export async function planRepair(reports: ContainerClient, csvName: string, bucketCount: number): Promise<RepairPlan> {
  const plan: RepairPlan = { resend: new Map(), withdraw: new Map(), profiles: 0, withdrawals: 0, unaddressable: 0 };
  const seen = new Set<string>();
  await readDrift(reports, csvName, (kind, identity, key) => {
    if (kind !== 'unknown') {
      if (seen.has(key)) return; // missing and extra for one profile: sent once
      seen.add(key);
      plan.profiles++;
      return add(plan.resend as Map<number, Set<string>>, bucketOf(key, bucketCount), key, () => new Set());
    }
    if (identity.startsWith('b:')) return void plan.unaddressable++;
    plan.withdrawals++;
    add(plan.withdraw as Map<number, string[]>, bucketOf(UNKNOWN_KEY_PREFIX + identity, bucketCount), identity, () => []);
  });
  return plan;
}

/** Applies the plan to the state, bucket by bucket (each read again if another writer moved first). */
export async function applyRepair(state: SyncStateStore, plan: RepairPlan, definition: string): Promise<void> {
  const held = await heldIdentities(state, plan);
  for (const [bucket, list] of plan.withdraw)
    plan.withdraw.set(
      bucket,
      list.filter((identity) => !held.has(identity)),
    );
  const buckets = new Set([...plan.resend.keys(), ...plan.withdraw.keys()]);
  for (const bucket of buckets) {
    for (let attempt = 0; ; attempt++) {
      try {
        await repairBucket(state, bucket, definition, plan.resend.get(bucket), plan.withdraw.get(bucket));
        break;
      } catch (e) {
        if (!(e instanceof StateTakenOver) || attempt >= 3) throw e;
      }
    }
  }
}

/**
 * The unknown users of the plan that a real state line holds now (an export run sent them since the
 * verification): their membership is CI's, never withdrawn. Read only when there are withdrawals.
 */
async function heldIdentities(state: SyncStateStore, plan: RepairPlan): Promise<Set<string>> {
  const wanted = new Set([...plan.withdraw.values()].flat());
  const held = new Set<string>();
  const manifest = wanted.size ? await state.readManifest() : null;
  for (let b = 0; b < (manifest?.bucketCount ?? 0); b++) {
    const { bytes } = await state.readBucket(b);
    if (!bytes) continue;
    for (const [key, e] of parseBucketState(bytes).entries)
      if (!key.startsWith(UNKNOWN_KEY_PREFIX) && wanted.has(e.identity)) held.add(e.identity);
  }
  return held;
}

async function repairBucket(
  state: SyncStateStore,
  bucket: number,
  definition: string,
  resend: Set<string> | undefined,
  withdraw: string[] | undefined,
): Promise<void> {
  const { bytes, etag } = await state.readBucket(bucket);
  const previous = parseBucketState(bytes);
  const lines: string[] = [];
  for (const [key, e] of previous.entries) {
    // Without its rows digest the next run maps and writes the profile; the fingerprint then differs.
    // Without heldFields every mapped field may be held: an empty one is written null, clearing a value
    // another tool set (stale drift on a field CI leaves empty).
    lines.push(resend?.has(key) ? stateLine(key, { identity: e.identity, fp: REPAIR_FP }) : stateLine(key, e));
  }
  for (const identity of withdraw ?? []) {
    const key = UNKNOWN_KEY_PREFIX + identity;
    if (!previous.entries.has(key)) lines.push(stateLine(key, { identity, fp: REPAIR_FP }));
  }
  // A bucket without state yet (only withdrawals land there) takes the export's current settings.
  const header = { definition: previous.definition || definition, fields: previous.fields, membership: previous.membership };
  await state.writeBucket(bucket, header, [stateLinesBytes(lines)], etag);
}
