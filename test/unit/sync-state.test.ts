// State lines: what Braze holds per profile, readable across releases.
import { describe, expect, it } from 'vitest';
import { parseBucketState as parseBlob } from '../../shared/engine/state/state-entries';
import { parseStateLine, stateLine } from '../../shared/engine/state/state-line';
import { StateBytes } from '../../shared/engine/state/state-bytes';
import { bytesDigest, lineDigest } from '../../shared/engine/hash/rows-digest';
import fc from 'fast-check';
import { SpilledProfiles } from '../../shared/engine/spill/spilled-profiles';
import { encodeRow } from '../../shared/engine/spill/spill-codec';

/** A state blob's text, read from its UTF-8 bytes as downloaded. */
const parseBucketState = (text: string) => parseBlob(Buffer.from(text));

describe('sync-state lines', () => {
  it('round-trip with the set bits, also in the JSON form for awkward keys', () => {
    for (const key of ['c1', 'tab\there', '[bracket']) {
      const entry = { identity: 'e:u1', fp: 'abcdef0123456789', heldFields: '5' };
      expect(parseStateLine(stateLine(key, entry))).toEqual([key, entry]);
    }
  });

  it('lines and headers written before masks were kept still read: every field counts as maybe set', () => {
    const state = parseBucketState('{"definition":"d1"}\nc1\te:u1\tfp1\n["[x","a:c2","fp2"]\n');
    expect(state.definition).toBe('d1');
    expect(state.fields).toBeUndefined();
    expect(state.entries.get('c1')).toEqual({ identity: 'e:u1', fp: 'fp1' });
    expect(state.entries.get('[x')).toEqual({ identity: 'a:c2', fp: 'fp2' });
  });

  it("round-trip with the rows' digest, beside lines that have none", () => {
    for (const key of ['c1', 'tab\there']) {
      const entry = { identity: 'e:u1', fp: 'abcdef0123456789', heldFields: '5', rowsDigest: 'Zz09-_Zz09-' };
      expect(parseStateLine(stateLine(key, entry))).toEqual([key, entry]);
    }
    const state = parseBucketState('{"definition":"d1"}\nc1\te:u1\tfp1\t3\nc2\te:u2\tfp2\t3\tsrc2\n');
    expect(state.entries.get('c1')).toEqual({ identity: 'e:u1', fp: 'fp1', heldFields: '3' });
    expect(state.entries.get('c2')).toEqual({ identity: 'e:u2', fp: 'fp2', heldFields: '3', rowsDigest: 'src2' });
  });
});

/** Spill lines (seg ␟ key ␟ fields) as the bucket step reads them. */
const spilled = (...lines: string[]) => new SpilledProfiles(Buffer.from(lines.map((l) => `${l}\n`).join('')));
const row = (seg: number, key: string, first: string) => encodeRow(seg, key, [key, 'u1', '', first], [0, 1, 2, 3]);

describe('entries read in place', () => {
  const text = `{"definition":"d1"}\nc1\te:u1\tfp1\t3\tSRC1\nc2\te:u2\tfp2\t3\n${stateLine('tab\tkey', { identity: 'e:u3', fp: 'fp3', heldFields: '1', rowsDigest: 'SRC3' })}\nc4\te:u4\tSRC1\nc5\te:u5\tfp5\t1\tSRC5\n`;

  it('find each line by key, and parse on demand', () => {
    const { entries } = parseBucketState(text);
    expect(entries.size).toBe(5);
    expect(entries.get('tab\tkey')).toEqual({ identity: 'e:u3', fp: 'fp3', heldFields: '1', rowsDigest: 'SRC3' });
    expect(entries.get('nobody')).toBeUndefined();
    entries.delete('c1');
    expect(entries.has('c1')).toBe(false);
    expect(entries.size).toBe(4);
    expect([...entries.keys()]).toEqual(['c2', 'tab\tkey', 'c4', 'c5']);
  });

  it('a line without a tab (a blob cut short) is read as all key, and reading stops at its end', () => {
    const { entries } = parseBucketState('{"definition":"d1"}\nc1\te:u1\tfp1\nbroken\nc2\te:u2\tfp2\ncut sho');
    expect([...entries.keys()]).toEqual(['c1', 'broken', 'c2', 'cut sho']);
    expect(entries.get('c2')).toEqual({ identity: 'e:u2', fp: 'fp2' });
  });

  it("tell whether a line ends in a spilled profile's rows digest, compared in place, only from a line that has one", () => {
    const rows = spilled(
      row(0, 'c1', 'A'),
      row(1, 'c1', 'A'),
      row(0, 'tab\tkey', 'B'),
      row(0, 'c3', 'C'),
      row(0, 'c4', 'D'),
      row(0, 'c5', 'E'),
    );
    const [c1, tab, c3, c4, c5] = [0, 1, 2, 3, 4];
    const d = (p: number) => rows.digest(p);
    const line = (key: string, rowsDigest: string) => stateLine(key, { identity: 'e:u', fp: 'fp', heldFields: '1', rowsDigest });
    const { entries } = parseBucketState(
      [
        '{"definition":"d1"}',
        line('c1', d(c1)),
        line('tab\tkey', d(tab)), // written as JSON (its key holds a tab)
        line('c3', `${d(c3).slice(0, 10)}${d(c3)[10] === 'x' ? 'y' : 'x'}`), // one character off
        `c4\te:u\t${d(c4)}`, // a fingerprint in its place, not a digest
        `c5\te:u\tfp\t${d(c5)}`, // a heldFields as long as a digest, no digest
      ].join('\n'),
    );
    const claimed = (p: number) => entries.claim(rows, p);
    const lines = [c1, tab, c3, c4, c5].map(claimed);
    expect(lines).not.toContain(-1);
    expect([c1, tab, c3, c4, c5].map((p, i) => entries.rowsDigestOf(lines[i]!, rows, p))).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
    // Another profile's digest is not this one's.
    expect(entries.rowsDigestOf(lines[0]!, rows, c3)).toBe(false);
  });

  it("claim the spilled profiles' lines in place, tell a matching rows digest only from a line that has one, and keep lines as written", () => {
    const { entries } = parseBucketState(text);
    const rows = spilled(
      row(0, 'c1', 'A'),
      row(0, 'tab\tkey', 'B'),
      row(0, 'c2', 'C'),
      row(0, 'c4', 'D'),
      row(0, 'c5', 'E'),
      row(0, 'new', 'F'),
    );
    const [c1, tab, c2, c4, c5, fresh] = [0, 1, 2, 3, 4, 5].map((p) => entries.claim(rows, p));
    expect(fresh).toBe(-1);
    expect(c4).not.toBe(-1);
    expect(entries.entryAt(c2!)).toEqual({ identity: 'e:u2', fp: 'fp2', heldFields: '3' });
    for (const line of [c1!, c2!, tab!, c5!]) entries.keepAsWritten(line);
    // Runs of lines kept are sliced whole: every kept line, each once, none of the others.
    const kept = new StateBytes();
    entries.writeKept(kept);
    expect(Buffer.from(kept.take()).toString().split('\n').slice(0, -1).sort()).toEqual(
      [
        'c1\te:u1\tfp1\t3\tSRC1',
        'c2\te:u2\tfp2\t3',
        'c5\te:u5\tfp5\t1\tSRC5',
        stateLine('tab\tkey', { identity: 'e:u3', fp: 'fp3', heldFields: '1', rowsDigest: 'SRC3' }),
      ].sort(),
    );
    expect([...entries.unclaimed()]).toEqual([]);
  });

  it('what no spilled profile claims left; a deleted line is claimed by none', () => {
    const { entries } = parseBucketState(text);
    entries.delete('c2');
    const rows = spilled(row(0, 'c1', 'A'), row(1, 'c2', 'B'));
    expect(entries.claim(rows, 0)).not.toBe(-1);
    expect(entries.claim(rows, 1)).toBe(-1);
    expect([...entries.unclaimed()].map(([key]) => key)).toEqual(['tab\tkey', 'c4', 'c5']);
  });
});

describe("a bucket's new state as bytes", () => {
  it('holds every line given, runs copied from a blob and texts encoded, whatever their size and characters', () => {
    const blob = Buffer.from('{"definition":"d1"}\nc1\te:u1\tfp1\nc2\te:u2\tfp2\n');
    const long = Array.from({ length: 3000 }, (_, i) => stateLine(`Zoë 李 ${i}`, { identity: `e:${i}`, fp: 'fp' })).join('\n');
    const out = new StateBytes(10);
    out.addLines(blob, blob.indexOf('c1'), blob.length - 1);
    out.addText('c3\te:u3\tfp3');
    out.addText(long);
    const lines = Buffer.from(out.take()).toString().split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toEqual(['c1\te:u1\tfp1', 'c2\te:u2\tfp2', 'c3\te:u3\tfp3', ...long.split('\n')]);
  });
});

describe("a profile's rows digest", () => {
  it('does not depend on the order of the rows, and sees any character of any row change', () => {
    const rows = spilled(
      row(0, 'c1', 'First'),
      row(0, 'c2', 'First'),
      row(1, 'c1', 'Ünï'),
      row(1, 'c2', 'Ünï'),
      row(0, 'c3', 'First'),
      row(1, 'c3', 'ÜnÏ'),
    );
    expect(rows.count).toBe(3);
    const again = spilled(row(1, 'c1', 'Ünï'), row(0, 'c1', 'First'));
    expect(again.digest(0)).toBe(rows.digest(0));
    expect(rows.digest(1)).not.toBe(rows.digest(0)); // another key
    expect(rows.digest(2)).not.toBe(spilled(row(0, 'c3', 'First'), row(1, 'c3', 'Ünï')).digest(0));
    expect(spilled(row(0, 'c1', 'First')).digest(0)).not.toBe(rows.digest(0));
    expect(spilled(row(0, 'c1', 'First')).digest(0)).toBe(lineDigest(row(0, 'c1', 'First'), 0));
    expect(spilled(row(1, 'Zoë', 'Ünï 李'.repeat(500))).digest(0)).toBe(lineDigest(row(1, 'Zoë', 'Ünï 李'.repeat(500)), 0));
    // Another seed (other column types): other digests for the same rows.
    expect(new SpilledProfiles(Buffer.from(`${row(0, 'c1', 'First')}\n`), 7).digest(0)).toBe(
      lineDigest(row(0, 'c1', 'First'), 7),
    );
    expect(lineDigest(row(0, 'c1', 'First'), 7)).not.toBe(lineDigest(row(0, 'c1', 'First'), 0));
    expect(rows.digest(0)).toMatch(/^[A-Za-z0-9_-]{11}$/);
  });

  it('is the digest the sync states customers hold were written with (else every profile takes the full path once)', () => {
    const line = Buffer.from('0\x1fsc1\x1fsc1\x1fsu1\x1fsann@example.com\x1fsOslo');
    // As release 13a505c, and every release since rows digests were taken four bytes a step, computed it.
    expect(bytesDigest(line, new DataView(line.buffer, line.byteOffset, line.length), 0, line.length, 0)).toBe('b8-hbSdxKhJ');
  });

  it('a line that differs in one byte, or by a trailing zero byte, has another digest (any length, anywhere in its buffer)', () => {
    const digest = (line: Uint8Array, at: number) => {
      const bytes = new Uint8Array(at + line.length + 3);
      bytes.set(line, at);
      return bytesDigest(bytes, new DataView(bytes.buffer), at, at + line.length, 0);
    };
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 13 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.nat(3),
        (line, i, flip, at) => {
          const other = Uint8Array.from(line);
          other[i % line.length] = other[i % line.length]! ^ flip;
          expect(digest(other, at)).not.toBe(digest(line, 0));
          expect(digest(Uint8Array.from([...line, 0]), at)).not.toBe(digest(line, 0));
          expect(digest(line, at)).toBe(digest(line, 0));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("keys and rows read back as written, whatever the key's characters", () => {
    const keys = ['c1', 'Zoë 李', 'new\nline', 'j-starts'];
    const rows = spilled(...keys.map((k, i) => row(0, k, `v${i}`)), row(1, 'Zoë 李', 'again'));
    expect(rows.count).toBe(4);
    keys.forEach((k, p) => {
      expect(rows.keyOf(p)).toBe(k);
      expect(rows.find(k)).toBe(p);
    });
    expect(rows.rowsOf(1)).toEqual([row(0, 'Zoë 李', 'v1'), row(1, 'Zoë 李', 'again')]);
    expect(rows.find('nobody')).toBe(-1);
    // Claimed from a state line in place or parsed, as the key needs.
    const { entries } = parseBucketState(
      `{"definition":"d1"}\n${keys.map((k) => stateLine(k, { identity: `e:${k}`, fp: 'fp' })).join('\n')}\n`,
    );
    keys.forEach((k, p) => expect(entries.entryAt(entries.claim(rows, p))).toEqual({ identity: `e:${k}`, fp: 'fp' }));
  });
});
