// The profiles a fingerprint alone cannot settle: a stale one (the state keeps one fingerprint per
// profile, so a changed value is seen but not its field) and one missing from Braze altogether (the
// state does not say which segments it holds). Once every bucket is compared, they are looked up in
// the snapshot the state was built from (sent-snapshot.ts): a profile whose mapped rows write exactly
// the object the state remembers is known field by field, so the drift names its fields (and a
// missing profile its segments), and a difference only in fields Braze cannot export is no drift.
// Bounded: the suspects and their rows wait in temp files spread by profile key and are settled one
// bucket at a time; memory holds 4 bytes of key hash per suspect, and one bucket.
import { BucketFiles, fnv1a32, mergePartials, identityOf, type MergedProfile, type PartialProfile } from '../engine';
import type { ExportDefinition } from '../exports/schema';
import type { BrazeUserReader, ExportedUser } from './braze-user';
import type { Drift, SentValues } from './drift';
import { readSentRows, SnapshotGone, type SentSnapshot } from './sent-snapshot';

export interface Suspect {
  kind: 'missing' | 'stale';
  identity: string;
  /** The CI profile key, the fingerprint of what was sent, and its heldFields (`*` when unknown). */
  key: string;
  fp: string;
  held: string;
  /** What Braze holds (projected), for a stale profile. */
  user?: ExportedUser;
}

/** Suspects settled at once: a bucket of them (and their rows) is what memory holds. */
const PER_BUCKET = 20_000;
const MAX_BUCKETS = 256;

/** The field names a state entry's `heldFields` bits name (hex, 4 fields a digit, lowest first). */
function heldNames(fields: string[], bits: string): string[] {
  return fields.filter((_, i) => {
    const digit = bits[i >> 2];
    return digit !== undefined && ((parseInt(digit, 16) >> (i & 3)) & 1) === 1;
  });
}

/** Whether the sorted `hashes` hold `h`. */
function holds(hashes: Uint32Array, h: number): boolean {
  let lo = 0;
  let hi = hashes.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = hashes[mid]!;
    if (v === h) return true;
    if (v < h) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

export class Suspects {
  private hashes = new Uint32Array(1024);
  private n = 0;
  private untold = 0;
  private readonly buckets: number;
  private readonly files: BucketFiles;

  /** `most`: how many suspects there can be (the profiles compared). */
  constructor(
    private readonly dir: string,
    private readonly def: ExportDefinition,
    private readonly reader: BrazeUserReader,
    most: number,
  ) {
    this.buckets = Math.min(MAX_BUCKETS, Math.max(1, Math.ceil(most / PER_BUCKET)));
    this.files = new BucketFiles(dir, 'verify-suspects');
  }

  add(s: Suspect): void {
    const hash = fnv1a32(s.key);
    if (this.n === this.hashes.length) {
      const grown = new Uint32Array(this.n * 2);
      grown.set(this.hashes);
      this.hashes = grown;
    }
    this.hashes[this.n++] = hash;
    this.files.write(hash % this.buckets, JSON.stringify(s));
  }

  /** Settles every suspect as drift (or a match); undefined when there were none. */
  async settle(
    sent: () => Promise<SentSnapshot>,
    drift: Drift,
    matched: () => void,
    /** Between buckets (and partitions of the snapshot): the caller's turn to stop the run. */
    between: () => Promise<void> = async () => undefined,
  ): Promise<SentValues | undefined> {
    this.files.close();
    if (this.n === 0) return undefined;
    const source = await sent();
    let why = 'why' in source ? source.why : undefined;
    const rows = new BucketFiles(this.dir, 'verify-sent-rows');
    if ('snapshot' in source) {
      const wanted = this.hashes.subarray(0, this.n).sort();
      try {
        await readSentRows(
          source,
          this.def,
          (h) => holds(wanted, h),
          (row) => rows.write(fnv1a32(row.key) % this.buckets, JSON.stringify(row)),
          between,
        );
      } catch (e) {
        if (!(e instanceof SnapshotGone)) throw e;
        why = e.message;
      }
    }
    rows.close();
    for (let b = 0; b < this.buckets; b++) {
      await between();
      const partials = new Map<string, PartialProfile[]>();
      if (!why)
        await rows.read(b, (line) => {
          const row = JSON.parse(line) as PartialProfile;
          const list = partials.get(row.key);
          if (list) list.push(row);
          else partials.set(row.key, [row]);
        });
      await this.files.read(b, (line) => {
        const s = JSON.parse(line) as Suspect;
        this.judge(s, this.sentProfile(s, partials.get(s.key)), drift, matched);
      });
      await Promise.all([rows.remove(b), this.files.remove(b)]);
    }
    const snapshotId = 'snapshot' in source ? source.snapshot.id : null;
    if (this.untold && !why)
      why = `what was last sent to them is not what the snapshot of the export's last run (${'run' in source ? source.run : '?'}) makes: an earlier run sent it, or the last run did not deliver it`;
    return { snapshotId, looked: this.n, untold: this.untold, ...(this.untold ? { why } : {}) };
  }

  /** The profile as the snapshot makes it, if that makes exactly the object the state remembers sending. */
  private sentProfile(s: Suspect, partials: PartialProfile[] | undefined): MergedProfile | null {
    if (!partials) return null;
    const p = mergePartials(partials);
    return identityOf(p) === s.identity && this.reader.sentFingerprint(p, s.fp) === s.fp ? p : null;
  }

  private judge(s: Suspect, sent: MergedProfile | null, drift: Drift, matched: () => void): void {
    if (!sent) this.untold++;
    if (s.kind === 'missing') return drift('missing', s.identity, s.key, sent ? [...sent.segments].sort((a, b) => a - b) : []);
    const u = s.user!;
    const shown = this.reader.segmentsOf(u);
    if (!sent) {
      // Only which fields Braze holds a value of can be told: those whose presence differs.
      const now = this.reader.heldFields(u);
      const was = s.held === '*' ? null : heldNames(this.reader.fields, s.held).filter((f) => this.reader.verifiable.includes(f));
      const fields = was ? [...was.filter((f) => !now.includes(f)), ...now.filter((f) => !was.includes(f))] : [];
      return drift('stale', s.identity, s.key, shown, fields);
    }
    const gone = sent.segments.filter((i) => !shown.includes(i)).sort((a, b) => a - b);
    const added = shown.filter((i) => !sent.segments.includes(i));
    const fields = this.reader.differingFields(sent, u, s.identity);
    if (fields.length)
      return drift('stale', s.identity, s.key, shown, [...fields, ...this.reader.membershipFields([...gone, ...added])]);
    if (gone.length) drift('missing', s.identity, s.key, gone);
    if (added.length) drift('extra', s.identity, s.key, added);
    // Nothing Braze exports differs: at most a field it cannot export, which is not verified.
    if (!gone.length && !added.length) matched();
  }
}
