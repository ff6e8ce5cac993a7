// Verification by sample: a random share of the profiles the sync state says Braze holds, read back
// with POST /users/export/ids (50 ids a request; Braze allows 40 requests/s when fields_to_export is
// given), for exports too large to read whole and keys without users.export.segment. It finds
// missing, extra and stale profiles among those sampled (never unknown users: it reads only ours),
// and says how far the result holds for the whole export.
import type { ExportDefinition } from '../exports/schema';
import { BrazeExportRefused, exportUsersByIds } from '../braze/user-export';
import { parseBucketState, RunAborted, type SyncStateStore } from '../engine';
import { BrazeUserReader, type ExportedUser } from './braze-user';
import { classify, type Comparison } from './compare';
import { driftCounter, noDrift, type DriftCounts, type DriftRow } from './drift';
import type { SentSnapshot } from './sent-snapshot';
import { Suspects } from './suspects';
import { thousands } from '../thousands';

const IDS_PER_REQUEST = 50;
/** Braze's limit with fields_to_export is 40 requests/s: requests go one at a time, at least this far apart. */
const MIN_INTERVAL_MS = 1000 / 40;

interface Entry {
  identity: string;
  key: string;
  fp: string;
  held: string;
}

/** A uniform random sample of `size` state entries (reservoir sampling over every bucket, one bucket in memory at a time). */
async function sampleEntries(state: SyncStateStore, bucketCount: number, fields: string[], size: number) {
  const sample: Entry[] = [];
  let seen = 0;
  const same = (f: string[] | undefined) => !!f && f.length === fields.length && f.every((x, i) => x === fields[i]);
  for (let b = 0; b < bucketCount; b++) {
    const { bytes } = await state.readBucket(b);
    if (!bytes) continue;
    const bucket = parseBucketState(bytes);
    const known = same(bucket.fields);
    for (const [key, e] of bucket.entries) {
      const entry = { identity: e.identity, key, fp: e.fp, held: known && e.heldFields !== undefined ? e.heldFields : '*' };
      seen++;
      if (sample.length < size) sample.push(entry);
      else {
        const j = Math.floor(Math.random() * seen);
        if (j < size) sample[j] = entry;
      }
    }
  }
  return { sample, total: seen };
}

/**
 * How far a sample's result holds, at 95 %: with no drift, below 1 − 0.05^(1/n) (about 3/n);
 * otherwise Wilson's interval around the share found.
 */
export function confidenceStatement(drifted: number, sampled: number): string {
  const pct = (x: number) => `${(x * 100).toFixed(x < 0.001 ? 3 : 2).replace(/\.?0+$/, '')} %`;
  const n = thousands(sampled);
  if (sampled === 0) return 'Nothing to sample: the export has sent nothing';
  if (drifted === 0) return `0 drift in ${n} sampled profiles: drift below ${pct(1 - Math.pow(0.05, 1 / sampled))} at 95 %`;
  const z = 1.96;
  const p = drifted / sampled;
  const centre = (p + (z * z) / (2 * sampled)) / (1 + (z * z) / sampled);
  const half = (z * Math.sqrt((p * (1 - p)) / sampled + (z * z) / (4 * sampled * sampled))) / (1 + (z * z) / sampled);
  return `${thousands(drifted)} drifted in ${n} sampled profiles: drift between ${pct(Math.max(0, centre - half))} and ${pct(centre + half)} at 95 %`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function verifySample(input: {
  definition: ExportDefinition;
  state: SyncStateStore;
  baseUrl: string;
  apiKey: string;
  fields: string[];
  size: number;
  onDrift: (row: DriftRow) => void;
  shouldStop: () => boolean;
  /** The snapshot the state was built from (read only if a sampled profile is stale or missing). */
  sent: () => Promise<SentSnapshot>;
  /** A temp folder for the stale and missing profiles while the snapshot is read. */
  dir: string;
}): Promise<Comparison & { sampled: number; statement: string }> {
  const def = input.definition;
  const reader = new BrazeUserReader(def);
  const manifest = await input.state.readManifest();
  const { sample, total } = manifest
    ? await sampleEntries(input.state, manifest.bucketCount, reader.fields, input.size)
    : { sample: [], total: 0 };
  const counts: DriftCounts = { inState: total, inBraze: 0, matched: 0, ...noDrift() };
  const bySegment = Object.fromEntries(def.segments.map((s) => [s, noDrift()]));
  const drift = driftCounter(def, counts, bySegment, input.onDrift);
  const drifted = new Set<string>();
  const onDrift = (...args: Parameters<typeof drift>) => {
    drifted.add(args[1]);
    drift(...args);
  };
  const suspects = new Suspects(input.dir, def, reader, sample.length);
  const matched = () => void counts.matched++;
  let last = 0;
  for (let i = 0; i < sample.length && !input.shouldStop();) {
    const batch = sample.slice(i, i + IDS_PER_REQUEST);
    await sleep(Math.max(0, last + MIN_INTERVAL_MS - Date.now()));
    last = Date.now();
    const externalIds = batch.filter((e) => e.identity.startsWith('e:')).map((e) => e.identity.slice(2));
    const aliases = batch
      .filter((e) => e.identity.startsWith('a:'))
      .map((e) => ({ alias_name: e.identity.slice(2), alias_label: def.matching.aliasLabel }));
    const answer = await exportUsersByIds(input.baseUrl, input.apiKey, {
      ...(externalIds.length ? { external_ids: externalIds } : {}),
      ...(aliases.length ? { user_aliases: aliases } : {}),
      fields_to_export: input.fields,
    }).catch((e: unknown) => {
      // A refusal asking again cannot change (403 names the missing permission, 401, 400…) ends the run at once.
      throw e instanceof BrazeExportRefused && !e.retryable ? new RunAborted(e.message) : e;
    });
    if ('retryAfterMs' in answer) {
      await sleep(answer.retryAfterMs); // the same batch again
      continue;
    }
    // A user is found by any identity it carries (an alias user Braze later gave an external_id too).
    const byIdentity = new Map(
      answer.users.flatMap((u) => reader.identitiesOf(u as ExportedUser).map((id) => [id, u as ExportedUser])),
    );
    counts.inBraze += answer.users.length;
    for (const e of batch) {
      const u = byIdentity.get(e.identity);
      if (!u) suspects.add({ kind: 'missing', ...e });
      else classify(reader, e, reader.project(u), onDrift, matched, (s) => suspects.add(s));
    }
    i += batch.length;
  }
  // Stopped (a cancel, or the export's lease lost): the caller ends the attempt; nothing more is read.
  if (input.shouldStop()) return { counts, bySegment, sampled: 0, statement: '' };
  const sentValues = await suspects.settle(input.sent, onDrift, matched);
  const statement = confidenceStatement(drifted.size, sample.length);
  return { counts, bySegment, ...(sentValues ? { sentValues } : {}), sampled: sample.length, statement };
}
