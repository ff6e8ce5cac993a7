// Row → profile mapping rules (DESIGN.md §5) that the engine tests do not pin down one by one.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ObjectBytes, objectAt } from '../../shared/engine/thread/object-bytes';
import { fingerprintBytes, fingerprintLike, sameFingerprint } from '../../shared/engine/hash/fingerprint';
import { mergePartials } from '../../shared/engine/profile/merge';
import { BrazeObjectWriter } from '../../shared/engine/profile/object-writer';
import { RowMapper } from '../../shared/engine/profile/row-mapper';
import { coerce } from '../../shared/snapshot/cdm-types';
import { isNormalEmail, normalizeEmail, normalizePhone } from '../../shared/engine/profile/values';
import { exportDefinition } from '../helpers/definition';

describe('CDM types → JSON values', () => {
  it.each([
    ['42', 'int64', 42],
    ['-7', 'int64', -7],
    ['12.50', 'decimal', 12.5],
    ['1e3', 'double', 1000],
    ['TRUE', 'boolean', true],
    ['0', 'boolean', false],
    ['2018-01-02T12:00:00Z', 'dateTime', '2018-01-02T12:00:00.000Z'],
    ['2018-01-02 12:00:00.123', 'dateTime', '2018-01-02T12:00:00.123Z'],
    ['2018-01-02T12:00:00+02:00', 'dateTimeOffset', '2018-01-02T10:00:00.000Z'],
    ['  text  ', 'string', 'text'],
    ['', 'int64', null],
  ])('%j as %s → %j', (raw, type, value) => {
    expect(coerce(raw, type)).toEqual({ ok: true, value });
  });

  it.each([
    ['4.2', 'int64'],
    ['99999999999999999999', 'int64'],
    ['1,5', 'decimal'],
    ['maybe', 'boolean'],
    ['yesterday', 'dateTime'],
  ])('%j as %s is refused with a reason', (raw, type) => {
    const c = coerce(raw, type);
    expect(c.ok).toBe(false);
  });
});

describe('email and phone', () => {
  it('keeps valid values, normalised; refuses the rest', () => {
    expect(normalizeEmail(' ann@example.com ')).toBe('ann@example.com');
    expect(normalizeEmail('not-an-email')).toBeNull();
    expect(normalizeEmail('a@b')).toBeNull();
    expect(normalizePhone('+1 (555) 010-2030')).toBe('+15550102030');
    expect(normalizePhone('12')).toBeNull();
  });

  it('an email kept exactly as it is, told from its bytes as normalizeEmail tells it from its text', () => {
    const bytesSay = (text: string) => isNormalEmail(Buffer.from(text, 'latin1'), 0, text.length);
    for (const yes of ['a@b.io', 'x.y+z@example.com', 'a@b-c.d-e.fg', `${'l'.repeat(200)}@${'d'.repeat(40)}.io`])
      expect(bytesSay(yes), yes).toBe(true);
    for (const no of [
      'a@b',
      ' a@b.io',
      'a@b.io ',
      'a@-b.io',
      'a@b-.io',

      'a@b..io',
      '@b.io',
      'a@',
      'a"b@c.io',
      `a@${'d'.repeat(64)}.io`,
      `${'l'.repeat(250)}@b.io`,
    ])
      expect(bytesSay(no), no).toBe(false);
    const part = fc.oneof(
      { arbitrary: fc.constantFrom('a', 'Z', '0', 'io', 'b-c', '+', '_'), weight: 8 },
      {
        arbitrary: fc.constantFrom('-', '.', '@', ' ', '\t', '"', '(', '[', '\\', '\x01', '\x7f', 'é', 'd'.repeat(62)),
        weight: 1,
      },
    );
    const text = fc.array(part, { maxLength: 6 }).map((p) => p.join(''));
    const email = fc.oneof(
      fc.tuple(text, fc.array(text, { maxLength: 4 })).map(([local, labels]) => `${local}@${labels.join('.')}`),
      fc.array(part, { maxLength: 12 }).map((p) => p.join('')),
    );
    let kept = 0;
    fc.assert(
      fc.property(email, (text) => {
        const same = normalizeEmail(text) === text && [...text].every((c) => c.charCodeAt(0) < 0x80);
        kept += same ? 1 : 0;
        expect(bytesSay(text)).toBe(same);
      }),
      { numRuns: 20000 },
    );
    expect(kept).toBeGreaterThan(50);
  });
});

describe('profiles', () => {
  const def = {
    ...exportDefinition({
      segments: ['B', 'A'],
      matching: { email: 'Email', brazeCustomerId: 'Ext', phone: 'Phone', attributes: { score: 'Score', city: 'City' } },
    }),
  };
  const columns = [
    { name: 'CustomerId' },
    { name: 'Ext' },
    { name: 'Email' },
    { name: 'Phone' },
    { name: 'Score', dataType: 'int64' },
    { name: 'City' },
  ];

  it('merges a profile across segments: first value wins in the export order, membership sorted', () => {
    const b = new RowMapper(def, 0, columns).map(['c1', '', 'b@example.com', '', '7', '']);
    const a = new RowMapper(def, 1, columns).map(['c1', '', 'a@example.com', 'bad', 'x', 'Oslo']);
    if (!a.ok || !b.ok) throw new Error('rows should map');
    const merged = mergePartials([a.partial, b.partial]);
    expect(JSON.parse(new BrazeObjectWriter(def).profile(merged))).toEqual({
      user_alias: { alias_name: 'c1', alias_label: 'ci_customer_id' },
      _update_existing_only: false,
      email: 'b@example.com',
      city: 'Oslo',
      score: 7,
      'seg-id': ['A', 'B'],
    });
    // The invalid phone and score of the second row are counted as left out; the score found elsewhere wins.
    expect(merged.omitted).toEqual({ phone: 'invalid phone' });
  });

  it('uses external_id when the Braze customer ID is there, never together with user_alias', () => {
    const r = new RowMapper(def, 0, columns).map(['c2', 'ext-2', '', '', '', '']);
    if (!r.ok) throw new Error('row should map');
    const obj = JSON.parse(new BrazeObjectWriter(def).profile(mergePartials([r.partial])));
    expect(obj).toEqual({ external_id: 'ext-2', 'seg-id': ['B'] });
    expect(obj).not.toHaveProperty('user_alias');
  });

  it('tells Braze a leaver left: membership null, or false for each segment in boolean format', () => {
    expect(JSON.parse(new BrazeObjectWriter(def).leaver('a:c9'))).toEqual({
      user_alias: { alias_name: 'c9', alias_label: 'ci_customer_id' },
      _update_existing_only: true,
      'seg-id': null,
    });
    const boolean = { ...def, membership: { format: 'boolean' as const, booleanPrefix: 'in_' } };
    expect(JSON.parse(new BrazeObjectWriter(boolean).leaver('e:x"1'))).toEqual({
      external_id: 'x"1',
      _update_existing_only: true,
      in_B: false,
      in_A: false,
    });
    const r = new RowMapper(boolean, 1, columns).map(['c3', 'x3', '', '', '', '']);
    if (!r.ok) throw new Error('row should map');
    expect(JSON.parse(new BrazeObjectWriter(boolean).profile(mergePartials([r.partial])))).toEqual({
      external_id: 'x3',
      in_B: false,
      in_A: true,
    });
  });

  it('lets the membership attribute win over a mapped attribute of the same name', () => {
    const clash = { ...def, matching: { ...def.matching, attributes: { ...def.matching.attributes, 'seg-id': 'City' } } };
    const r = new RowMapper(clash, 0, columns).map(['c4', 'x4', '', '', '', 'Oslo']);
    if (!r.ok) throw new Error('row should map');
    expect(JSON.parse(new BrazeObjectWriter(clash).profile(mergePartials([r.partial])))).toEqual({
      external_id: 'x4',
      city: 'Oslo',
      'seg-id': ['B'],
    });
  });

  it('reads a row back from the object sent for it, so a later row of the profile merges as it would have', () => {
    const writer = new BrazeObjectWriter(def);
    const rows = [
      ['c5', 'x5', 'e@example.com', '+47 912 34 567', '12', 'Bergen "sentrum"'],
      ['c6', '', '', '', '', 'Tromsø\nnord'],
    ];
    for (const fields of rows) {
      const r = new RowMapper(def, 1, columns).map(fields);
      if (!r.ok) throw new Error('row should map');
      const json = writer.profile(mergePartials([r.partial]));
      const back = writer.rowOf(json, r.partial.key, 1);
      expect(writer.profile(mergePartials([back]))).toBe(json);
      const later = new RowMapper(def, 0, columns).map([fields[0]!, '', 'later@example.com', '', '99', 'Later']);
      if (!later.ok) throw new Error('row should map');
      expect(writer.profile(mergePartials([back, later.partial]))).toBe(
        writer.profile(mergePartials([r.partial, later.partial])),
      );
    }
  });

  it('writes any text value as JSON that reads back to it: quotes, backslashes, control characters, emoji, lone surrogates', () => {
    const writer = new BrazeObjectWriter(def);
    const text = fc.string({
      unit: fc.oneof(
        fc.constantFrom('"', '\\', '\n', '\x00', '\x1f', '😀', '\ud800', '\udfff'),
        fc.string({ unit: 'binary', maxLength: 1 }),
      ),
    });
    fc.assert(
      fc.property(
        text.filter((id) => id !== ''),
        text,
        (id, city) => {
          const profile = mergePartials([{ key: `e:${id}`, seg: 0, ext: id, attrs: { city } }]);
          expect(JSON.parse(writer.profile(profile))).toEqual({ external_id: id, city, 'seg-id': ['B'] });
        },
      ),
    );
  });

  it('reports the columns a table lacks', () => {
    const mapper = new RowMapper(
      def,
      0,
      columns.filter((c) => c.name !== 'City'),
    );
    expect(mapper.problems).toEqual([{ field: 'matching.attributes.city', column: 'City' }]);
  });
});

/** The fingerprint of an object's JSON text: over its UTF-8 bytes. */
const fingerprintText = (json: string) => fingerprintBytes(Buffer.from(json), 0, Buffer.byteLength(json));

describe('object fingerprints', () => {
  const objects = [
    '{"external_id":"u1","email":"a@example.com"}',
    '{"external_id":"u1","email":"b@example.com"}',
    '{"external_id":"u1","email":"a@example.com","x":1}',
    '{"external_id":"ü1","city":"Tromsø 🌍"}',
  ];

  it('is the same for the same object wherever its bytes sit, and differs when any byte differs', () => {
    const list = new ObjectBytes();
    for (const o of objects) {
      const start = list.add(o);
      expect(fingerprintBytes(list.buffer, start, list.end)).toBe(fingerprintText(o));
      expect(fingerprintText(o)).toMatch(/^[A-Za-z0-9_-]{11}$/);
    }
    const taken = list.take();
    expect(objects.map((_, i) => Buffer.from(objectAt(taken, i)).toString())).toEqual(objects);
    expect(new Set(objects.map(fingerprintText)).size).toBe(objects.length);
    // Every one-character change of an object, anywhere in it, changes the fingerprint.
    const base = objects[0]!;
    const seen = new Set([fingerprintText(base)]);
    for (let i = 0; i < base.length; i++)
      seen.add(fingerprintText(`${base.slice(0, i)}${base[i] === 'z' ? 'y' : 'z'}${base.slice(i + 1)}`));
    expect(seen.size).toBe(base.length + 1);
  });

  it('still matches the fingerprints earlier releases wrote into sync states, and tells the two kinds apart', () => {
    // Fingerprints as the release before four-byte steps (13a505c) wrote them, a byte a step.
    const earlier: [string, string][] = [
      ['{"external_id":"u1","email":"ann@example.com","city":"Oslo","seg-id":["Main"]}', 'EVMQLdqFvoP'],
      ['{"external_id":"u2","first_name":"Zoë"}', 'qiypVdzZD6D'],
    ];
    // This release's kind, as its sync states hold it: a change to the function would resend every profile.
    const first = Buffer.from(earlier[0]![0]);
    expect(fingerprintBytes(first, 0, first.length)).toBe('YDsyCLpmUnY');
    for (const [json, written] of earlier) {
      const bytes = Buffer.from(json);
      const now = fingerprintBytes(bytes, 0, bytes.length);
      expect(now).not.toBe(written);
      expect(sameFingerprint(written, now, bytes, 0, bytes.length)).toBe(true);
      expect(fingerprintLike(written, bytes, 0, bytes.length)).toBe(written);
      expect(fingerprintLike(now, bytes, 0, bytes.length)).toBe(now);
      // Another object matches neither.
      const other = Buffer.from(json.replace('u', 'v'));
      expect(sameFingerprint(written, fingerprintBytes(other, 0, other.length), other, 0, other.length)).toBe(false);
    }
  });

  it('spreads a million similar objects without a collision', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1_000_000; i++) seen.add(fingerprintText(`{"external_id":"u${i}","first_name":"First${i}"}`));
    expect(seen.size).toBe(1_000_000);
  });
});
