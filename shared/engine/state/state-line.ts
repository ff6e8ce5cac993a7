// The sync state's line format: one profile per line, `key \t identity \t fp [\t heldFields [\t rowsDigest]]`,
// or a JSON array when a value holds a tab, newline or leading "[". The on-disk format of every
// bucket blob; StateEntries reads it in place, stateLine() writes it.

export interface StateEntry {
  /** How Braze knows the profile (`e:<external_id>` / `a:<alias_name>`), to address it when it leaves. */
  identity: string;
  /** Fingerprint of the last attributes object Braze accepted (without the nulls that cleared values). */
  fp: string;
  /**
   * Which of the bucket's `fields` Braze holds a value of for this profile, as hex bits (field i =
   * bit i): a value empty in CI now is cleared (sent as null) only if it was set. Absent in lines
   * written before it was kept: every field may be set.
   */
  heldFields?: string;
  /**
   * Digest of the profile's rows as spilled (hash/rows-digest.ts) when Braze took that object:
   * the same rows under the same settings make the same object. Only in lines that have `heldFields`.
   */
  rowsDigest?: string;
}

/** What the entries of a bucket were written under: the settings, the fields their masks count, the membership names. */
export interface BucketHeader {
  /** Fingerprint of the export settings the entries were computed under. */
  definition: string;
  /** Mapped fields, in mask bit order (email, phone, then the mapped attributes); absent before masks were kept. */
  fields?: string[];
  /** The membership attribute(s) written to each profile, with their format, to withdraw them when they change. */
  membership?: { format: 'list' | 'boolean'; names: string[] };
  /** A checkpoint of what the run `sentBy` sent early (see send/early-checkpoints.ts), not a bucket's state yet. */
  sentBy?: string;
  /** The run that wrote this state, with what became of the bucket in it (absent in state written before it was kept). */
  writtenBy?: BucketOutcome;
}

/**
 * A bucket's outcome in the run that wrote its state: an attempt of that run killed after the write
 * and before its run row listed the bucket done leaves these figures for the next attempt, which
 * would otherwise count the bucket's profiles unchanged instead of sent, and send again what Braze
 * refused of it.
 */
export interface BucketOutcome {
  run: string;
  /** The bucket's counts (BucketCounts). */
  counts: Record<string, number>;
  /** Values left out as invalid, by attribute. */
  omitted: Record<string, number>;
  /** What Braze refused, as [profile id, reason] (the first of them, up to MAX_OUTCOME_REFUSAL_CHARS). */
  refused: [string, string][];
  /** All that Braze refused, those not listed included. */
  refusedTotal: number;
}

/** Characters of profile ids and reasons a bucket's outcome lists at most: the header is read whole every time the bucket is. */
export const MAX_OUTCOME_REFUSAL_CHARS = 32 * 1024;

/** A stateLine() as its key and entry. */
export function parseStateLine(line: string): [string, StateEntry] {
  if (line.charCodeAt(0) === 0x5b /* [ */) {
    const [key, identity, fp, heldFields, rowsDigest] = JSON.parse(line) as [string, string, string, string?, string?];
    return [
      key,
      heldFields === undefined
        ? { identity, fp }
        : rowsDigest === undefined
          ? { identity, fp, heldFields }
          : { identity, fp, heldFields, rowsDigest },
    ];
  }
  const a = line.indexOf('\t');
  const b = line.indexOf('\t', a + 1);
  const c = line.indexOf('\t', b + 1);
  if (c === -1) return [line.slice(0, a), { identity: line.slice(a + 1, b), fp: line.slice(b + 1) }];
  const d = line.indexOf('\t', c + 1);
  if (d === -1)
    return [line.slice(0, a), { identity: line.slice(a + 1, b), fp: line.slice(b + 1, c), heldFields: line.slice(c + 1) }];
  return [
    line.slice(0, a),
    { identity: line.slice(a + 1, b), fp: line.slice(b + 1, c), heldFields: line.slice(c + 1, d), rowsDigest: line.slice(d + 1) },
  ];
}

/** The key of the stateLine() that runs from `start` to `end` in `text`, read in place. */
export function stateLineKey(text: string, start: number, end: number): string {
  return text.charCodeAt(start) === 0x5b
    ? (JSON.parse(text.slice(start, end)) as string[])[0]!
    : text.slice(start, text.indexOf('\t', start));
}

/** State lines as the UTF-8 bytes of a state blob, each ending in a newline. */
export const stateLinesBytes = (lines: string[]): Uint8Array => Buffer.from(lines.map((line) => `${line}\n`).join(''));

const plain = (v: string) => !/[\t\n\r]/.test(v);

/**
 * One entry of a state blob: key \t identity \t fp [\t heldFields [\t rowsDigest]]; a JSON array
 * when a value holds a tab, newline or leading "[".
 */
export function stateLine(key: string, e: StateEntry): string {
  if (plain(key) && plain(e.identity) && key[0] !== '[') {
    return e.heldFields === undefined
      ? `${key}\t${e.identity}\t${e.fp}`
      : e.rowsDigest === undefined
        ? `${key}\t${e.identity}\t${e.fp}\t${e.heldFields}`
        : `${key}\t${e.identity}\t${e.fp}\t${e.heldFields}\t${e.rowsDigest}`;
  }
  return JSON.stringify(
    e.heldFields === undefined
      ? [key, e.identity, e.fp]
      : e.rowsDigest === undefined
        ? [key, e.identity, e.fp, e.heldFields]
        : [key, e.identity, e.fp, e.heldFields, e.rowsDigest],
  );
}
