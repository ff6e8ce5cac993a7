// The bucket step indexes bucket after bucket in the same memory: what a larger bucket left there
// must never show through in the next one's answers.
import { describe, expect, it } from 'vitest';
import { encodeRow } from '../../shared/engine/spill/spill-codec';
import { ReusedMemory } from '../../shared/engine/spill/reused-memory';
import { SpilledProfiles } from '../../shared/engine/spill/spilled-profiles';
import { parseBucketState } from '../../shared/engine/state/state-entries';
import { StateBytes } from '../../shared/engine/state/state-bytes';

const spillText = (profiles: number, tag: string) =>
  Array.from({ length: profiles * 2 }, (_, i) => {
    const key = `c${i % profiles}`;
    return `${encodeRow(i < profiles ? 0 : 1, key, [key, `${tag}${i % 3}`], [0, 1])}\n`;
  }).join('');

/** What the bucket step asks of a bucket's spilled rows. */
const answers = (rows: SpilledProfiles) =>
  Array.from({ length: rows.count }, (_, p) => ({
    key: rows.keyOf(p),
    digest: rows.digest(p),
    rows: rows.rowsOf(p),
    alike: rows.segmentsIfAlike(p),
    found: rows.find(rows.keyOf(p)),
  }));

const stateText = (lines: number, tag: string) =>
  `{"definition":"d1"}\n${Array.from({ length: lines }, (_, i) => `c${i}\te:${tag}${i}\tfp${i}\t3\tD${i}\n`).join('')}`;

describe('memory used again from bucket to bucket', () => {
  it('indexes a smaller bucket after a larger one exactly as fresh memory does', () => {
    const memory = new ReusedMemory();
    const large = new SpilledProfiles(Buffer.from(spillText(500, 'a')), 7, memory);
    expect(large.count).toBe(500);
    const small = Buffer.from(spillText(40, 'b'));
    const reused = answers(new SpilledProfiles(small, 7, memory));
    expect(reused).toEqual(answers(new SpilledProfiles(small, 7)));
    expect(reused).toHaveLength(40);
    // A key only the larger bucket had is not found in the smaller one.
    expect(new SpilledProfiles(small, 7, memory).find('c300')).toBe(-1);
  });

  it("reads a smaller bucket's state after a larger one's: no line, claim or deletion carried over", () => {
    const memory = new ReusedMemory();
    const large = parseBucketState(Buffer.from(stateText(300, 'x')), memory).entries;
    large.delete('c5');
    const rows = new SpilledProfiles(Buffer.from(spillText(300, 'a')), 0, memory);
    for (let p = 0; p < rows.count; p++) large.claim(rows, p);

    const small = Buffer.from(stateText(20, 'y'));
    const entries = parseBucketState(small, memory).entries;
    expect(entries.size).toBe(20);
    expect(entries.get('c5')).toEqual({ identity: 'e:y5', fp: 'fp5', heldFields: '3', rowsDigest: 'D5' });
    expect(entries.has('c25')).toBe(false);
    // Nothing claimed in this bucket: every line is a leaver, as in fresh memory.
    expect([...entries.unclaimed()]).toEqual([...parseBucketState(small).entries.unclaimed()]);
    const kept = new StateBytes();
    entries.writeKept(kept);
    expect(kept.written()).toHaveLength(0);
  });
});
