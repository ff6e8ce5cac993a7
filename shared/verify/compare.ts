// Braze's export of the proof segment against the export's sync state, bucket by bucket. Braze
// knows a user by the identity the export wrote (external_id, or the alias), not by the CI profile
// key the state's buckets hash, so both sides are first spread over temp files by a hash of that
// identity (the state's own bucket count), then each bucket is compared with only that bucket's
// users in memory. The profiles a fingerprint cannot settle (stale, or missing from Braze altogether)
// are then looked up in the snapshot the state was built from (suspects.ts). Nothing is written to
// Braze or to the state.
import type { ExportDefinition } from '../exports/schema';
import { BucketFiles, bucketOf, ENCODED_64_CHARS, parseBucketState, type SyncStateStore } from '../engine';
import { BrazeUserReader, type ExportedUser } from './braze-user';
import { readUserLines } from './export-files';
import type { SentSnapshot } from './sent-snapshot';
import { Suspects, type Suspect } from './suspects';
import { driftCounter, noDrift, type Drift, type DriftCounts, type DriftRow, type KindCounts, type SentValues } from './drift';
import { rm, stat } from 'node:fs/promises';
import { setImmediate } from 'node:timers/promises';

export interface Comparison {
  counts: DriftCounts;
  /** Drift by CI segment, where the segment can be told. */
  bySegment: Record<string, KindCounts>;
  /** The stale and missing profiles looked up in the snapshot the state was built from (none: absent). */
  sentValues?: SentValues;
}

const plain = (v: string) => !/[\t\n\r]/.test(v) && v[0] !== '[';
/** Temp lines: tab-separated when every value is plain, else a JSON array (as the state's own lines). */
const joined = (values: string[]) => (values.every(plain) ? values.join('\t') : JSON.stringify(values));
const split = (line: string, n: number) => (line[0] === '[' ? (JSON.parse(line) as string[]) : line.split('\t', n));

const MAX_BUCKETS = 256;
/** Braze's files unpack to about this many bytes a byte; a bucket's users in memory aim at this many bytes. */
const UNPACKED_PER_BYTE = 10;
const BUCKET_TARGET_BYTES = 32 * 1024 * 1024;
/** State buckets read at once: the state is many small blobs. */
const STATE_READS = 4;

/**
 * The state's entries, spread by identity over `count` temp files: fp, heldFields (`*` when written
 * under other fields), identity, key per line.
 */
async function spreadState(state: SyncStateStore, bucketCount: number, fields: string[], files: BucketFiles, count: number) {
  let entries = 0;
  let next = 0;
  const sameFields = (f: string[] | undefined) => !!f && f.length === fields.length && f.every((x, i) => x === fields[i]);
  const reader = async () => {
    for (let b = next++; b < bucketCount; b = next++) {
      const { bytes } = await state.readBucket(b);
      if (!bytes) continue;
      const bucket = parseBucketState(bytes);
      const known = sameFields(bucket.fields);
      for (const [key, e] of bucket.entries) {
        const held = known && e.heldFields !== undefined ? e.heldFields : '*';
        files.write(bucketOf(e.identity, count), joined([e.fp, held, e.identity, key]));
        entries++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(STATE_READS, bucketCount) }, reader));
  files.close();
  return entries;
}

/**
 * Braze's users, each projected to what a comparison reads and spread by its best identity: the
 * fingerprints of what Braze holds (both kinds, one after the other: a state line may hold either),
 * the identities it carries (JSON), the projected user. Each downloaded file is deleted once spread.
 */
async function spreadUsers(paths: string[], reader: BrazeUserReader, files: BucketFiles, count: number): Promise<number> {
  let users = 0;
  for (const file of paths) {
    await readUserLines(file, (line) => {
      const u = reader.project(JSON.parse(line) as ExportedUser);
      const ids = reader.identitiesOf(u);
      const [now, bytewise] = reader.fingerprintsOf(u, ids[0]!);
      files.write(bucketOf(ids[0]!, count), `${now}${bytewise}\t${JSON.stringify(ids)}\t${JSON.stringify(u)}`);
      users++;
    });
    await rm(file, { force: true });
  }
  files.close();
  return users;
}

/**
 * A state entry (`held`: its heldFields, `*` when unknown) against the user Braze holds for it: the
 * same object; or the same values under another membership (missing, extra); or a suspect (stale, or
 * differing only in fields Braze cannot export), settled once the snapshot is read. When what was
 * sent held a field Braze cannot export, no fingerprint can match: the profile goes straight to the
 * snapshot's values, without trying each set of segments (2^n fingerprints, all in vain).
 */
export function classify(
  reader: BrazeUserReader,
  e: { identity: string; key: string; fp: string; held: string },
  u: ExportedUser,
  drift: Drift,
  matched: () => void,
  suspect: (s: Suspect) => void,
): void {
  // A sent object that held a field Braze cannot export matches under no membership: no search for
  // one. With its fields unknown (`*`, an older state line) it may still be the very same object.
  const canMatch = reader.fingerprintCanMatch(e.held);
  if (!canMatch && e.held !== '*') return suspect({ kind: 'stale', ...e, user: u });
  const compared = reader.compare(u, e.identity, e.fp, canMatch);
  if (compared.same) return matched();
  const shown = reader.segmentsOf(u);
  const sent = compared.sentSegments;
  if (!sent) return suspect({ kind: 'stale', ...e, user: u });
  const gone = sent.filter((i) => !shown.includes(i));
  const added = shown.filter((i) => !sent.includes(i));
  if (gone.length) drift('missing', e.identity, e.key, gone);
  if (added.length) drift('extra', e.identity, e.key, added);
}

interface StateLine {
  identity: string;
  key: string;
  fp: string;
  held: string;
}

/** The identities of a user's temp line (their JSON holds no raw tab). */
const idsOf = (line: string): string[] => {
  const tab = line.indexOf('\t');
  return JSON.parse(line.slice(tab + 1, line.indexOf('\t', tab + 1))) as string[];
};
/** The projected user of a user's temp line. */
const userOf = (line: string) => JSON.parse(line.slice(line.indexOf('\t', line.indexOf('\t') + 1) + 1)) as ExportedUser;
const stateLineOf = (line: string): StateLine => {
  const [fp, held, identity, key] = split(line, 4) as [string, string, string, string];
  return { identity, key, fp, held };
};

/** How each state line and each Braze user is judged: matched, or drift of some kind. */
interface Judge {
  /** A state line against the temp line of the user Braze holds for it. */
  one(e: StateLine, line: string): void;
  /** A state line no Braze user answers to. */
  missing(e: StateLine): void;
  /** A Braze user no state line answers to. */
  unknown(identity: string, line: string): void;
}

function judgeWith(reader: BrazeUserReader, counts: DriftCounts, drift: Drift, suspects: Suspects): Judge {
  const matched = () => void counts.matched++;
  const suspect = (s: Suspect) => suspects.add(s);
  return {
    one(e, line) {
      const tab = line.indexOf('\t');
      // As it was sent: the state line's fingerprint is one of the user's two (see spreadUsers).
      const sentAsIs = line.slice(0, tab - ENCODED_64_CHARS) === e.fp || line.slice(tab - ENCODED_64_CHARS, tab) === e.fp;
      if (e.identity === idsOf(line)[0] && sentAsIs) return matched();
      classify(reader, e, userOf(line), drift, matched, suspect);
    },
    // Which segments it held is in the snapshot, not the state.
    missing: (e) => suspect({ kind: 'missing', ...e }),
    unknown: (identity, line) => drift('unknown', identity, '', reader.segmentsOf(userOf(line))),
  };
}

/** The spread's bucket count: the state's own, more when Braze's files are large, at most 256. */
async function bucketCountFor(files: string[], stateBuckets: number): Promise<number> {
  let downloaded = 0;
  for (const f of files)
    downloaded += await stat(f).then(
      (st) => st.size,
      () => 0,
    );
  const byBytes = Math.ceil((downloaded * UNPACKED_PER_BYTE) / BUCKET_TARGET_BYTES);
  return Math.min(MAX_BUCKETS, Math.max(1, stateBuckets, byBytes));
}

/**
 * An alias user Braze later gave an external_id is spread by its alias, while a state line may know it
 * by that external_id (another bucket). Both wait in temp files spread by that external_id (`state`: the
 * state lines no user of their bucket answered, `users`: the users no line answered that carry one),
 * and meet bucket by bucket once every bucket is compared: memory holds one bucket of them, never all.
 */
class Pairing {
  readonly state: BucketFiles;
  readonly users: BucketFiles;

  constructor(
    dir: string,
    private readonly count: number,
  ) {
    this.state = new BucketFiles(dir, 'verify-pair-state');
    this.users = new BucketFiles(dir, 'verify-pair-braze');
  }

  async meet(judge: Judge, between: () => Promise<void>): Promise<void> {
    this.state.close();
    this.users.close();
    for (let b = 0; b < this.count; b++) {
      await between();
      const users = new Map<string, string>();
      await this.users.read(b, (line) => users.set(idsOf(line)[1]!, line));
      await this.state.read(b, (line) => {
        const e = stateLineOf(line);
        const u = users.get(e.identity);
        if (u === undefined) return judge.missing(e);
        users.delete(e.identity);
        judge.one(e, u);
      });
      for (const line of users.values()) judge.unknown(idsOf(line)[0]!, line);
      await Promise.all([this.users.remove(b), this.state.remove(b)]);
    }
  }
}

/** One bucket of both sides: each state line meets the user of its identity, or waits for the pairing, or is missing. */
async function compareBucket(
  b: number,
  sides: { state: BucketFiles; users: BucketFiles },
  judge: Judge,
  pairing: Pairing,
  count: number,
) {
  const users = new Map<string, string>();
  await sides.users.read(b, (line) => users.set(idsOf(line)[0]!, line));
  await sides.users.remove(b);
  await sides.state.read(b, (line) => {
    const e = stateLineOf(line);
    const u = users.get(e.identity);
    if (u !== undefined) {
      users.delete(e.identity);
      return judge.one(e, u);
    }
    if (e.identity.startsWith('e:')) return pairing.state.write(bucketOf(e.identity, count), line);
    judge.missing(e);
  });
  await sides.state.remove(b);
  for (const [identity, line] of users) {
    const second = idsOf(line)[1];
    if (second) pairing.users.write(bucketOf(second, count), line);
    else judge.unknown(identity, line);
  }
}

export async function compareWithState(input: {
  definition: ExportDefinition;
  state: SyncStateStore;
  files: string[];
  dir: string;
  onDrift: (row: DriftRow) => void;
  /** Once both sides are spread (inState and inBraze known): throws to stop before comparing. */
  checkSpread?: (counts: DriftCounts) => void;
  /** The snapshot the state was built from (read only if some profile is stale or missing). */
  sent: () => Promise<SentSnapshot>;
  /**
   * Asked between buckets (after the event loop had a turn: the lease's renewal, the heartbeat that
   * learns of a cancel), and once the spread is done: throws to stop the comparison there.
   */
  checkpoint?: () => void | Promise<void>;
}): Promise<Comparison> {
  const { definition: def } = input;
  const reader = new BrazeUserReader(def);
  const manifest = await input.state.readManifest();
  // A bucket's users are held in memory while it is compared: two sets of per-bucket write buffers stay small.
  const count = await bucketCountFor(input.files, manifest?.bucketCount ?? 1);
  const sides = { state: new BucketFiles(input.dir, 'verify-state'), users: new BucketFiles(input.dir, 'verify-braze') };
  const counts: DriftCounts = { inState: 0, inBraze: 0, matched: 0, ...noDrift() };
  const bySegment: Record<string, KindCounts> = Object.fromEntries(def.segments.map((s) => [s, noDrift()]));
  [counts.inState, counts.inBraze] = await Promise.all([
    manifest ? spreadState(input.state, manifest.bucketCount, reader.fields, sides.state, count) : 0,
    spreadUsers(input.files, reader, sides.users, count),
  ]);
  input.checkSpread?.(counts);
  // A bucket is compared without a pause: between buckets the event loop has its turn, then the check.
  const between = async () => {
    await setImmediate();
    await input.checkpoint?.();
  };
  await between();
  const drift = driftCounter(def, counts, bySegment, input.onDrift);
  const suspects = new Suspects(input.dir, def, reader, counts.inState);
  const judge = judgeWith(reader, counts, drift, suspects);
  const pairing = new Pairing(input.dir, count);
  for (let b = 0; b < count; b++) {
    if (b > 0) await between();
    await compareBucket(b, sides, judge, pairing, count);
  }
  await pairing.meet(judge, between);
  const sentValues = await suspects.settle(input.sent, drift, () => counts.matched++, between);
  return { counts, bySegment, ...(sentValues ? { sentValues } : {}) };
}
