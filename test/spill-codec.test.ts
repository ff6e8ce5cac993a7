import { describe, expect, it } from 'vitest';
import type { PartialProfile } from '../shared/engine/read/row-mapper';
import { SpillCodec } from '../shared/engine/spill/spill-codec';
import { SpilledProfiles } from '../shared/engine/spill/spilled-profiles';

describe('spill codec', () => {
  const codec = new SpillCodec(['a_num', 'b_bool', 'c_text', 'd_missing']);
  it.each<PartialProfile>([
    { key: 'c1', seg: 0, ext: 'u1', email: 'x@example.com', attrs: { a_num: 12.5, b_bool: false, c_text: 'plain' } },
    { key: 'c2', seg: 3, alias: 'c2', phone: '+15550001', attrs: { c_text: 'line one\nline two', b_bool: true }, omitted: { email: 'invalid email' } },
    { key: 'j\x1fodd\r\nkey', seg: 1, attrs: { c_text: 'jstarts with j', a_num: 0 } },
    { key: 'c4', seg: 2, ext: 'jx', attrs: { c_text: '' } },
    { key: 'c5', seg: 0, attrs: { c_text: 'Anne, "Annie" 名前' } },
  ])('round-trips %j', (p) => {
    expect(codec.decode(codec.encode(p))).toEqual(p);
    expect(codec.encode(p)).not.toContain('\n');
  });

  it('decodes a line in place, and its key from the bytes, within the text of many lines', () => {
    const profiles: PartialProfile[] = [
      { key: 'c1', seg: 0, ext: 'u1', attrs: { a_num: 1 }, omitted: { email: 'invalid email' } },
      { key: 'c2', seg: 1, alias: 'c2', attrs: {} },
      { key: 'j\x1fodd\r\nkey', seg: 12, attrs: { c_text: 'odd key' } },
      { key: 'c3', seg: 2, attrs: { c_text: 'last' } },
    ];
    const text = `${profiles.map((p) => codec.encode(p)).join('\n')}\n`;
    let start = 0;
    for (const p of profiles) {
      const end = text.indexOf('\n', start);
      expect(codec.decodeAt(text, start, end)).toEqual(p);
      start = end + 1;
    }
    // The bucket step reads the keys (and rows) from the bytes, in place.
    const spilled = new SpilledProfiles(Buffer.from(text));
    expect(profiles.map((_, i) => spilled.keyOf(i))).toEqual(profiles.map((p) => p.key));
    expect(profiles.map((_, i) => codec.decode(spilled.rowsOf(i)[0]!))).toEqual(profiles);
  });
});
