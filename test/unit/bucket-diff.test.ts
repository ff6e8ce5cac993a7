// The bucket step's decisions, profile by profile, over spilled rows and state bytes built in memory:
// unchanged by digest, changed, leaving, identity moved, and merged with what was sent early.
import { describe, expect, it } from 'vitest';
import { diffBucket, type DiffResult } from '../../shared/engine/diff/bucket-diff';
import { settleEarlySends, type SentEarly } from '../../shared/engine/diff/early-settle';
import { SpilledMerge } from '../../shared/engine/diff/spilled-merge';
import { sendBuffers } from '../../shared/engine/diff/bucket-sends';
import type { EarlyRecords } from '../../shared/engine/early-send/records';
import { mergePartials } from '../../shared/engine/profile/merge';
import { LineObjectWriter } from '../../shared/engine/profile/line-object';
import { BrazeObjectWriter } from '../../shared/engine/profile/object-writer';
import { encodeRow } from '../../shared/engine/spill/spill-codec';
import { SpilledProfiles } from '../../shared/engine/spill/spilled-profiles';
import { parseBucketState } from '../../shared/engine/state/state-entries';
import { stateLine } from '../../shared/engine/state/state-line';
import { bytewiseFingerprint, fingerprintBytes } from '../../shared/engine/hash/fingerprint';
import { refusedAgain } from '../../shared/engine/run/bucket-pipeline';
import { emptyBucketCounts } from '../../shared/engine/thread/protocol';
import { createRing, RingReader, RingWriter } from '../../shared/engine/thread/shared-ring';
import { objectAt, receiveObjects } from '../../shared/engine/thread/object-bytes';
import { SendLines } from '../../shared/engine/thread/send-lines';
import { exportDefinition } from '../helpers/definition';

const def = exportDefinition({
  segments: ['Main', 'Other'],
  matching: { email: 'Email', brazeCustomerId: 'Ext', attributes: { city: 'City' } },
});
// Spill columns in their fixed order: CustomerId, Ext, Email, City.
const columns = ['CustomerId', 'Ext', 'Email', 'City'].map((name) => ({ name, dataType: 'string' }));
const merge = new SpilledMerge(def, { Main: columns, Other: columns });
const writer = new BrazeObjectWriter(def);
/** Objects of alike rows written from their spill lines' bytes: each decision is checked with and without. */
const lines = new LineObjectWriter(def, writer);
const settings = { definitionFp: 'def-1', fullSync: false, runId: 'run-2' };

type Row = [segment: number, customerId: string, ext: string, email: string, city: string];
const spilled = (rows: Row[]) =>
  new SpilledProfiles(
    Buffer.from(rows.map(([seg, id, ...rest]) => `${encodeRow(seg, id, [id, ...rest], [0, 1, 2, 3])}\n`).join('')),
    merge.digestSeed,
  );

/** What a diff hands over to be sent: each object's bytes, with its key and kind. */
function handedOver(result: DiffResult): { key: string; leaving: number; bytes: Buffer }[] {
  const [objects, state] = [createRing(1 << 20), createRing(1 << 20)];
  const toSend = result.sends.handOver({ objects: new RingWriter(objects), state: new RingWriter(state) });
  const { list } = receiveObjects(new RingReader(objects), toSend.objects);
  const { lines } = SendLines.receive(new RingReader(state), toSend.lines, toSend.leaving.length);
  return toSend.leaving.map((leaving, i) => ({ key: lines.key(i), leaving, bytes: Buffer.from(objectAt(list, i)) }));
}

/** What a diff sends, read back as Braze would get it: each object's JSON with its key and kind. */
const sent = (result: DiffResult): { key: string; leaving: number; object: Record<string, unknown> }[] =>
  handedOver(result).map(({ key, leaving, bytes }) => ({
    key,
    leaving,
    object: JSON.parse(bytes.toString('utf8')) as Record<string, unknown>,
  }));

/** The state a run leaves once Braze took everything it sent. */
function stateAfter(result: DiffResult, definition = settings.definitionFp): Uint8Array {
  const [objects, state] = [createRing(1 << 20), createRing(1 << 20)];
  const toSend = result.sends.handOver({ objects: new RingWriter(objects), state: new RingWriter(state) });
  const { lines } = SendLines.receive(new RingReader(state), toSend.lines, toSend.leaving.length);
  const header = JSON.stringify({ definition, fields: writer.fields, membership: writer.membershipNames });
  return Buffer.concat([
    Buffer.from(`${header}\n${result.kept.map((line) => `${line}\n`).join('')}`),
    ...toSend.leaving.map((_, i) => lines.sentAt(i)),
  ]);
}

const ann: Row = [0, 'c1', 'u1', 'ann@example.com', 'Oslo'];
const bob: Row = [0, 'c2', 'u2', 'bob@example.com', 'Rome'];

describe("a first run's send lines", () => {
  it('are the same bytes whether the objects were written from spill lines or mapped from strings, whatever the key', () => {
    const keys = ['c1', 'c 2', '[c3', '"c4', 'Zoë5', 'new\nline6', 'tab\tkey7', 'j8', 'ext:9'];
    const rows = keys.map((key, i): Row => [i % 2, key, i % 3 ? `u${i}` : '', `p${i}@example.com`, `City ${i}`]);
    const columnsOf = (objectLines: LineObjectWriter | undefined) => {
      const result = diffBucket(
        merge,
        writer,
        settings,
        {
          rows: spilled(rows),
          previous: parseBucketState(null),
          counts: emptyBucketCounts(),
          sentEarly: new Map(),
          earlyRows: null,
        },
        objectLines,
      );
      const [objects, state] = [createRing(1 << 20), createRing(1 << 20)];
      const toSend = result.sends.handOver({ objects: new RingWriter(objects), state: new RingWriter(state) });
      const { lines: sendLines } = SendLines.receive(new RingReader(state), toSend.lines, toSend.leaving.length);
      return toSend.leaving.map((_, i) =>
        [sendLines.sentAt(i), sendLines.beforeAt(i), Buffer.from(sendLines.key(i))].map((b) => Buffer.from(b).toString('latin1')),
      );
    };
    const fromStrings = columnsOf(undefined);
    expect(fromStrings.map(([, , key]) => Buffer.from(key!, 'latin1').toString('utf8'))).toEqual(keys);
    expect(fromStrings[0]![0]).toMatch(/^c1\ta:c1\t[\w-]{11}\t[0-9a-f]+\t[\w-]{11}\n$/);
    expect(fromStrings[1]![0]).toMatch(/^c 2\te:u1\t/);
    expect(columnsOf(lines)).toEqual(fromStrings);
  });
});

describe.each([
  ['mapped from strings', undefined],
  ['written from spill lines', lines],
])('bucket step decisions (objects %s)', (_, objectLines) => {
  const inputsOf = (
    rows: Row[],
    state: Uint8Array | null,
    sentEarly = new Map<string, SentEarly>(),
    earlyRows = null as never,
  ) => ({
    rows: spilled(rows),
    previous: parseBucketState(state),
    counts: emptyBucketCounts(),
    sentEarly,
    earlyRows,
  });
  function diff(rows: Row[], state: Uint8Array | null, sentEarly = new Map<string, SentEarly>(), earlyRows = null as never) {
    return diffBucket(merge, writer, settings, inputsOf(rows, state, sentEarly, earlyRows), objectLines);
  }
  const firstRun = stateAfter(diff([ann, bob], null));

  it.each<[string, Row[], { unchanged: number; profiles: number; newProfiles: number }, [string, number][]]>([
    ['the same rows: unchanged by their digest, nothing sent', [ann, bob], { profiles: 2, unchanged: 2, newProfiles: 0 }, []],
    [
      'a changed value: only that profile is sent',
      [[0, 'c1', 'u1', 'ann@example.com', 'Bergen'], bob],
      { profiles: 2, unchanged: 1, newProfiles: 0 },
      [['c1', 0]],
    ],
    [
      'a profile gone from the snapshot: its membership is withdrawn',
      [ann],
      { profiles: 1, unchanged: 1, newProfiles: 0 },
      [['c2', 1]],
    ],
    [
      'an identity moved: sent under the new one, withdrawn at the old one',
      [[0, 'c1', 'u9', 'ann@example.com', 'Oslo'], bob],
      { profiles: 2, unchanged: 1, newProfiles: 0 },
      [
        ['c1', 0],
        ['c1', 2],
      ],
    ],
    [
      'a new profile: counted new to the export and sent',
      [ann, bob, [1, 'c3', 'u3', 'cy@example.com', 'Lima']],
      { profiles: 3, unchanged: 2, newProfiles: 1 },
      [['c3', 0]],
    ],
  ])('%s', (_, rows, counts, expected) => {
    const result = diff(rows, firstRun);
    expect(result.counts).toMatchObject(counts);
    expect(sent(result).map((s) => [s.key, s.leaving])).toEqual(expected);
  });

  it('sends nothing again for a state an earlier release wrote: fingerprints a byte a step, no rows digests', () => {
    // The lines as a release before rows digests and four-byte fingerprints wrote them: key,
    // identity, the fingerprint of the very object sent, the fields Braze holds.
    const objectOf = new Map(handedOver(diff([ann, bob], null)).map((s) => [s.key, s.bytes]));
    const [header, ...entries] = Buffer.from(firstRun).toString('utf8').trimEnd().split('\n');
    const earlier = entries.map((line) => {
      const [key, identity, , held] = line.split('\t') as [string, string, string, string];
      const object = objectOf.get(key)!;
      return [key, identity, bytewiseFingerprint(object, 0, object.length), held].join('\t');
    });
    const state = Buffer.from(`${[header, ...earlier].join('\n')}\n`);
    const same = diff([ann, bob], state);
    expect(same.counts).toMatchObject({ profiles: 2, unchanged: 2 });
    expect(sent(same)).toEqual([]);
    // Its lines now hold this release's fingerprint and the rows digest: the next run takes the short path.
    const lines = Buffer.from(stateAfter(same)).toString('utf8').trimEnd().split('\n').slice(1);
    expect(lines.map((line) => [line.split('\t')[0], line.split('\t')[2]])).toEqual(
      [...objectOf].map(([key, o]) => [key, fingerprintBytes(o, 0, o.length)]),
    );
    expect(lines.every((line) => line.split('\t').length === 5)).toBe(true);
    const changed = diff([[0, 'c1', 'u1', 'ann@example.com', 'Bergen'], bob], state);
    expect(changed.counts).toMatchObject({ profiles: 2, unchanged: 1 });
    expect(sent(changed).map((s) => [s.key, s.object.city])).toEqual([['c1', 'Bergen']]);
  });

  it('writes what each object must say: new values, the old identity withdrawn, leavers cleared', () => {
    const moved = sent(diff([[0, 'c1', 'u9', 'ann@example.com', 'Oslo']], firstRun));
    expect(moved[0]!.object).toMatchObject({ external_id: 'u9', email: 'ann@example.com', city: 'Oslo', 'seg-id': ['Main'] });
    expect(moved[1]!.object).toMatchObject({ external_id: 'u1', 'seg-id': null });
    expect(moved[2]).toMatchObject({ key: 'c2', leaving: 1, object: { external_id: 'u2', 'seg-id': null } });
  });

  it('clears a value emptied in CI once, and sends a profile in two segments once, with both', () => {
    const emptied = sent(diff([[0, 'c1', 'u1', 'ann@example.com', ''], bob], firstRun));
    expect(emptied).toEqual([
      { key: 'c1', leaving: 0, object: { external_id: 'u1', email: 'ann@example.com', city: null, 'seg-id': ['Main'] } },
    ]);
    const both = diff([ann, [1, ...ann.slice(1)] as Row], null);
    expect(both.counts).toMatchObject({ profiles: 1, newProfiles: 1 });
    expect(sent(both).map((s) => s.object)).toEqual([
      { external_id: 'u1', email: 'ann@example.com', city: 'Oslo', 'seg-id': ['Main', 'Other'] },
    ]);
  });

  it('sends, bucket after bucket in the same buffers, only the objects of each bucket, even after one that failed halfway', () => {
    const buffers = sendBuffers();
    const first = diffBucket(merge, writer, settings, { ...inputsOf([ann], null), buffers }, objectLines);
    expect(sent(first).map((s) => s.key)).toEqual(['c1']);
    // A bucket that failed halfway: its object and lines were written, never handed over.
    buffers.objects.add('{"external_id":"stale"}');
    buffers.lines.add('stale', 'stale\te:stale\tFP', '');
    const next = diffBucket(merge, writer, settings, { ...inputsOf([bob], null), buffers }, objectLines);
    expect(sent(next)).toEqual([
      { key: 'c2', leaving: 0, object: { external_id: 'u2', email: 'bob@example.com', city: 'Rome', 'seg-id': ['Main'] } },
    ]);
  });

  it('sends everything again under other settings, though the rows are the same', () => {
    const result = diffBucket(
      merge,
      writer,
      { ...settings, definitionFp: 'def-2' },
      {
        rows: spilled([ann, bob]),
        previous: parseBucketState(firstRun),
        counts: emptyBucketCounts(),
        sentEarly: new Map(),
        earlyRows: null,
      },
      objectLines,
    );
    expect(result.counts.unchanged).toBe(0);
    expect(sent(result).map((s) => s.key)).toEqual(['c1', 'c2']);
  });

  /** A profile sent early from its row, and taken by Braze: what the early records say of it, and its row to merge. */
  const sentEarlyAs = (earlyRow: Row, identity: string) => {
    const partial = merge.partialsOf(spilled([earlyRow]), 0)[0]!;
    const bytes = Buffer.from(writer.profile(mergePartials([partial])));
    const entry: SentEarly = { identity, fp: fingerprintBytes(bytes, 0, bytes.length), delivered: true, line: 0 };
    return { entry, earlyRows: new Map([[earlyRow[1], partial]]) };
  };

  it('merges a profile sent early with its later rows: sent again only if that changes its object', () => {
    const { entry, earlyRows } = sentEarlyAs(ann, 'e:u1');
    // The same row again (the segment twice): nothing new for Braze, counted as sent.
    const same = diff([ann], null, new Map([['c1', entry]]), earlyRows as never);
    expect(same.counts).toMatchObject({ profiles: 1, sent: 1 });
    expect(sent(same)).toEqual([]);
    // A later row in another segment: the membership grows, so the object goes again.
    const more = diff([[1, 'c1', 'u1', 'ann@example.com', 'Oslo']], null, new Map([['c1', entry]]), earlyRows as never);
    expect(more.counts).toMatchObject({ profiles: 1, sent: 0 });
    expect(sent(more).map((s) => s.object['seg-id'])).toEqual([['Main', 'Other']]);
  });

  it('withdraws a profile sent early under its alias when a later row gives it a Braze customer ID', () => {
    const { entry, earlyRows } = sentEarlyAs([0, 'c1', '', 'ann@example.com', 'Oslo'], 'a:c1');
    const moved = diff([ann], null, new Map([['c1', entry]]), earlyRows as never);
    expect(moved.counts).toMatchObject({ profiles: 1, newProfiles: 1 });
    const objects = sent(moved);
    expect(objects.map((s) => [s.key, s.leaving])).toEqual([
      ['c1', 0],
      ['c1', 2],
    ]);
    expect(objects[0]!.object).toMatchObject({ external_id: 'u1', 'seg-id': ['Main'] });
    expect(objects[1]!.object).toEqual({
      user_alias: { alias_name: 'c1', alias_label: expect.any(String) as string },
      _update_existing_only: true,
      'seg-id': null,
    });
  });
});

describe('settling what was sent early', () => {
  const records = (lines: string[], undelivered: EarlyRecords['undelivered'] = new Map(), recheck = new Set<string>()) => ({
    stateText: lines.map((l) => `${l}\n`).join(''),
    recheck,
    undelivered,
  });
  const line = (key: string) => stateLine(key, { identity: `e:${key}`, fp: `fp-${key}`, heldFields: '3' });

  it('counts delivered profiles as sent and keeps their lines as written', () => {
    const previous = parseBucketState(null);
    const settled = settleEarlySends(records([line('a'), line('b')]), spilled([]), previous.entries, () => true);
    expect(settled.counts).toMatchObject({ profiles: 2, sent: 2, newProfiles: 2 });
    expect(settled.kept).toEqual([`${line('a')}\n${line('b')}`]);
    expect(settled.withLaterRows.size).toBe(0);
  });

  it('keeps the previous state of a profile Braze refused, reports why, and claims it from the leavers', () => {
    const previous = parseBucketState(Buffer.from(`{"definition":"def-1"}\n${stateLine('b', { identity: 'e:b', fp: 'old' })}\n`));
    const undelivered = new Map([['b', { status: 'rejected' as const, reason: 'bad email' }]]);
    const settled = settleEarlySends(
      records([line('a'), line('b')], undelivered),
      spilled([]),
      previous.entries,
      (before) => !before,
    );
    expect(settled.counts).toMatchObject({ profiles: 2, sent: 1, rejected: 1, newProfiles: 1 });
    expect(settled.refused).toEqual([{ key: 'b', reason: 'bad email' }]);
    expect(settled.kept).toEqual([stateLine('b', { identity: 'e:b', fp: 'old' }), line('a')]);
    expect([...previous.entries.unclaimed()]).toEqual([]);
  });

  it('leaves a profile with later rows to the diff, with whether Braze took it', () => {
    const rows = spilled([[1, 'a', 'a', 'a@example.com', 'Oslo']]);
    const settled = settleEarlySends(
      records([line('a')], new Map(), new Set(['a'])),
      rows,
      parseBucketState(null).entries,
      () => true,
    );
    expect(settled.counts.profiles).toBe(0);
    expect(settled.withLaterRows.get('a')).toMatchObject({ identity: 'e:a', delivered: true, line: 0 });
  });
});

describe('an object Braze refused when an earlier attempt of the run sent it early', () => {
  it('is answered with that refusal, not sent again, whichever release fingerprinted it, and only if it is the same object', () => {
    const result = diffBucket(merge, writer, settings, {
      rows: spilled([ann, bob]),
      previous: parseBucketState(null),
      counts: emptyBucketCounts(),
      sentEarly: new Map(),
      earlyRows: null,
    });
    const [objects, state] = [createRing(1 << 20), createRing(1 << 20)];
    const toSend = result.sends.handOver({ objects: new RingWriter(objects), state: new RingWriter(state) });
    const { list } = receiveObjects(new RingReader(objects), toSend.objects);
    const { lines } = SendLines.receive(new RingReader(state), toSend.lines, toSend.leaving.length);
    const [annObject, bobObject] = [objectAt(list, 0), objectAt(list, 1)];
    const reason = 'Braze refused the object (400: Invalid attributes object in request)';
    const refusedAs = (fp: string) => new Map([['c1', { fp, reason }]]);
    const againFor = (fp: string, j: number, object: Uint8Array) => refusedAgain(refusedAs(fp), lines, toSend.leaving, j, object);
    const rejected = { status: 'rejected', reason };
    expect(againFor(fingerprintBytes(annObject, 0, annObject.length), 0, annObject)).toEqual(rejected);
    // Its checkpoint written by the release before (a byte a step): the same object all the same.
    expect(againFor(bytewiseFingerprint(annObject, 0, annObject.length), 0, annObject)).toEqual(rejected);
    // Another object under the profile's key, of either kind: sent again.
    expect(againFor(bytewiseFingerprint(bobObject, 0, bobObject.length), 0, annObject)).toBeNull();
    expect(againFor(fingerprintBytes(bobObject, 0, bobObject.length), 0, annObject)).toBeNull();
    // A profile Braze did not refuse.
    expect(againFor(fingerprintBytes(bobObject, 0, bobObject.length), 1, bobObject)).toBeNull();
  });
});
