// State lines: what Braze holds per profile, readable across releases.
import { describe, expect, it } from 'vitest';
import { parseBucketState, parseStateLine, stateLine } from '../shared/engine/diff/sync-state';
import { lineDigest, rowsDigest } from '../shared/engine/spill/rows-digest';

describe('sync-state lines', () => {
  it('round-trip with the set bits, also in the JSON form for awkward keys', () => {
    for (const key of ['c1', 'tab\there', '[bracket']) {
      const entry = { identity: 'e:u1', fp: 'abcdef0123456789', set: '5' };
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
      const entry = { identity: 'e:u1', fp: 'abcdef0123456789', set: '5', src: 'Zz09-_Zz09-' };
      expect(parseStateLine(stateLine(key, entry))).toEqual([key, entry]);
    }
    const state = parseBucketState('{"definition":"d1"}\nc1\te:u1\tfp1\t3\nc2\te:u2\tfp2\t3\tsrc2\n');
    expect(state.entries.get('c1')).toEqual({ identity: 'e:u1', fp: 'fp1', set: '3' });
    expect(state.entries.get('c2')).toEqual({ identity: 'e:u2', fp: 'fp2', set: '3', src: 'src2' });
  });
});

describe('entries read in place', () => {
  it("find each line by key, tell a matching rows digest only from a line that has one, and parse on demand", () => {
    const text = `{"definition":"d1"}\nc1\te:u1\tfp1\t3\tSRC1\nc2\te:u2\tfp2\t3\n${stateLine('tab\tkey', { identity: 'e:u3', fp: 'fp3', set: '1', src: 'SRC3' })}\nc4\te:u4\tSRC1\n`;
    const { entries } = parseBucketState(text);
    expect(entries.size).toBe(4);
    expect(entries.lineIfSrc('c1', 'SRC1')).toBe('c1\te:u1\tfp1\t3\tSRC1');
    expect(entries.lineIfSrc('c1', 'SRC9')).toBeUndefined();
    expect(entries.lineIfSrc('c1', 'RC1')).toBeUndefined();
    expect(entries.lineIfSrc('c2', '3')).toBeUndefined(); // a set, not a digest
    expect(entries.lineIfSrc('c4', 'SRC1')).toBeUndefined(); // a fingerprint, not a digest
    expect(entries.lineIfSrc('tab\tkey', 'SRC3')).toBe(stateLine('tab\tkey', { identity: 'e:u3', fp: 'fp3', set: '1', src: 'SRC3' }));
    expect(entries.lineIfSrc('nobody', 'SRC1')).toBeUndefined();
    expect(entries.get('tab\tkey')).toEqual({ identity: 'e:u3', fp: 'fp3', set: '1', src: 'SRC3' });
    entries.delete('c1');
    expect([...entries.keys()]).toEqual(['c2', 'tab\tkey', 'c4']);
  });
});

describe("a profile's rows digest", () => {
  const text = '0\x1fsc1\x1fsu1\x1fsFirst\x1f\n1\x1fsc1\x1fsu1\x1fsFirst\x1f\n1\x1fsc1\x1fsu1\x1fsFirsT\x1f\n';
  const [a, b, c] = [0, text.indexOf('\n') + 1, text.indexOf('\n', text.indexOf('\n') + 1) + 1];
  it('does not depend on the order of the rows, and sees any character of any row change', () => {
    expect(rowsDigest(text, [a, b])).toBe(rowsDigest(text, [b, a]));
    expect(rowsDigest(text, [a, b])).not.toBe(rowsDigest(text, [a, c]));
    expect(rowsDigest(text, [a, b])).not.toBe(rowsDigest(text, a));
    expect(rowsDigest(text, a)).toBe(lineDigest(text.slice(0, b - 1)));
    expect(rowsDigest(text, a)).toMatch(/^[A-Za-z0-9_-]{11}$/);
  });
});
