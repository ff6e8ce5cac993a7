// State lines: what Braze holds per profile, readable across releases.
import { describe, expect, it } from 'vitest';
import { parseBucketState, parseStateLine, stateLine } from '../shared/engine/diff/sync-state';

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
});
