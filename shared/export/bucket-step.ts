// The engine's per-bucket step, run on the engine thread (after the partition step) while the main thread sends the
// previous bucket: merges each profile's rows across segments, diffs it against what Braze was
// last sent, and says what to send (plus `null` membership for profiles that left). A profile's
// fingerprint is taken over the very JSON that would be sent, so "changed" means "Braze would get
// something else".
import type { ExportDefinition } from '../exports/schema';
import { BucketFiles } from './bucket-files';
import { readEarlyRecords, type EarlySent } from './early-send';
import { BrazeObjectWriter, identityOf, mergePartials, type PartialProfile } from './profile';
import { SpillCodec } from './spill-codec';
import { hashText, parseBucketState, stateLine, type StateEntry } from './sync-state';

/** What finished buckets add up to: carried across a resumed run's attempts. */
export interface BucketCounts {
  profiles: number;
  unchanged: number;
  sent: number;
  removed: number;
  rejected: number;
  failed: number;
  removalsFailed: number;
}

export const emptyBucketCounts = (): BucketCounts => ({ profiles: 0, unchanged: 0, sent: 0, removed: 0, rejected: 0, failed: 0, removalsFailed: 0 });

export interface ToSend {
  key: string;
  json: string;
  fp: string;
  identity: string;
  leaving: boolean;
  /** What Braze had (the state entry), kept if this send fails. */
  before: StateEntry | null;
}

export interface PreparedBucket {
  bucket: number;
  toSend: ToSend[];
  /** State lines of the profiles not being sent (unchanged, or delivered while reading), joined. */
  kept: string;
  /** The state blob must be rewritten even if nothing is sent now. */
  stateChanged: boolean;
  counts: BucketCounts;
  omitted: Record<string, number>;
  /** Profiles sent while reading that Braze refused. */
  refusedEarly: { key: string; reason: string }[];
}

export interface BucketSettings {
  def: ExportDefinition;
  definitionFp: string;
  fullSync: boolean;
  tempDir: string;
}

export class BucketStep {
  private readonly codec: SpillCodec;
  private readonly writer: BrazeObjectWriter;
  private readonly spill: BucketFiles;

  constructor(
    private readonly settings: BucketSettings,
    /** Attribute omissions of the bucket's profiles sent while reading. */
    private readonly earlyOmitted: (bucket: number) => Record<string, number>,
  ) {
    this.codec = new SpillCodec(Object.keys(settings.def.matching.attributes).sort());
    this.writer = new BrazeObjectWriter(settings.def);
    this.spill = new BucketFiles(settings.tempDir, 'rows');
  }

  async prepare(bucket: number, stateText: string | null): Promise<PreparedBucket> {
    const { codec, writer } = this;
    const { definitionFp } = this.settings;
    const partials = new Map<string, PartialProfile[]>();
    await this.spill.read(bucket, (line) => {
      const p = codec.decode(line);
      const list = partials.get(p.key);
      if (list) list.push(p);
      else partials.set(p.key, [p]);
    });
    const sentEarly: Map<string, EarlySent> = await readEarlyRecords(this.settings.tempDir, codec, bucket);
    const previous = parseBucketState(stateText);
    const trustPrevious = previous.definition === definitionFp && !this.settings.fullSync;
    const kept: string[] = [];
    const counts = emptyBucketCounts();
    const omitted: Record<string, number> = { ...this.earlyOmitted(bucket) };
    const toSend: ToSend[] = [];
    const refusedEarly: PreparedBucket['refusedEarly'] = [];

    for (const [key, list] of partials) {
      // A profile sent while reading can still have more rows (the same segment twice): merge them,
      // and send again only if that changes what Braze got.
      const earlier = sentEarly.get(key);
      const merged = mergePartials(earlier ? [codec.decode(earlier.partialLine), ...list] : list);
      if (!earlier) for (const attr of Object.keys(merged.omitted)) omitted[attr] = (omitted[attr] ?? 0) + 1;
      counts.profiles++;
      const json = writer.profile(merged);
      const fp = hashText(json);
      const identity = identityOf(merged);
      const before = previous.entries.get(key) ?? null;
      if (earlier?.status === 'sent' && earlier.fp === fp) {
        counts.sent++;
        kept.push(stateLine(key, { identity, fp }));
      } else if (trustPrevious && before?.fp === fp) {
        counts.unchanged++;
        kept.push(stateLine(key, before));
      } else toSend.push({ key, json, fp, identity, leaving: false, before });
    }
    for (const [key, e] of sentEarly) {
      if (partials.has(key)) continue; // merged above
      counts.profiles++;
      if (e.status === 'sent') {
        counts.sent++;
        kept.push(stateLine(key, { identity: e.identity, fp: e.fp }));
        continue;
      }
      // Not delivered: keep what Braze had, so the next run sends it again.
      const before = previous.entries.get(key);
      if (before) kept.push(stateLine(key, before));
      if (e.status === 'rejected') {
        counts.rejected++;
        refusedEarly.push({ key, reason: e.reason });
      } else counts.failed++;
    }
    for (const [key, before] of previous.entries) {
      if (!partials.has(key) && !sentEarly.has(key)) toSend.push({ key, json: writer.leaver(before.identity), fp: '', identity: before.identity, leaving: true, before });
    }
    return { bucket, toSend, kept: kept.join('\n'), stateChanged: previous.definition !== definitionFp || sentEarly.size > 0, counts, omitted, refusedEarly };
  }
}
