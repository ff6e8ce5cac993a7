// Early send's records (early-send/offers.ts, records.ts): what a bucket keeps of each profile sent
// early. A profile of the segment read last keeps its object, for a later row of it to merge with;
// one of another segment, sent once that segment is complete, can have no later row: an empty line
// stands in for its object.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EarlyOffers, type OfferedRow } from '../../shared/engine/early-send/offers';
import { readEarlyRows, SENT_OBJECTS } from '../../shared/engine/early-send/records';
import { fnv1a32 } from '../../shared/engine/hash/key-hash';
import { BrazeObjectWriter } from '../../shared/engine/profile/object-writer';
import { RowMapper } from '../../shared/engine/profile/row-mapper';
import { encodeRow } from '../../shared/engine/spill/spill-codec';
import { createRing, RingWriter } from '../../shared/engine/thread/shared-ring';
import { exportDefinition } from '../helpers/definition';

const def = exportDefinition({
  segments: ['Other', 'Last'],
  matching: { email: 'Email', brazeCustomerId: 'Ext', attributes: { city: 'City' } },
});
const columns = ['CustomerId', 'Ext', 'Email', 'City'].map((name) => ({ name }));

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A row of segment `seg` as offered: from its spill line (the scanner's path) or from its strings only. */
function row(seg: number, fields: string[], fromLine: boolean): OfferedRow {
  const mapper = new RowMapper(def, seg, columns);
  const bytes = Buffer.from(encodeRow(seg, fields[0]!, fields, mapper.spillAt));
  return {
    bucket: 0,
    hash: fnv1a32(fields[0]!),
    rowsDigest: () => 'digest',
    partial: () => mapper.partialOf(fields),
    line: fromLine ? { bytes, length: bytes.length, mapper, segment: seg } : null,
  };
}

describe.each([true, false])('profiles sent early (objects from spill lines: %s)', (fromLine) => {
  it("keep the object of one of the segment read last, for a later row of it, and not another segment's", async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'early-offers-'));
    const sent: string[][] = [];
    const offers = new EarlyOffers(dir, def, { otherBytes: 500, tableBytes: 500 }, 1, new RingWriter(createRing(1 << 16)), (b) =>
      sent.push(b.keys),
    );
    offers.noteOtherSegment(fnv1a32('c2'));
    expect(offers.offer(row(1, ['c1', 'u1', 'a@b.io', 'Oslo'], fromLine))).toBe(true);
    expect(offers.offer(row(1, ['c1', 'u1', 'a@b.io', 'Rome'], fromLine))).toBe(false); // a later row: merged in the bucket step
    expect(offers.offerOther(row(0, ['c2', 'u2', 'b@b.io', 'Lima'], fromLine))).toBe(true);
    offers.finish();
    expect(sent.flat()).toEqual(['c1', 'c2']);
    const objects = readFileSync(path.join(dir, `bucket-0.${SENT_OBJECTS}`), 'utf8').split('\n');
    expect(objects).toEqual([expect.stringContaining('"external_id":"u1"'), '', '']);
    const rows = await readEarlyRows(dir, new BrazeObjectWriter(def), 1, 0, new Map([[0, 'c1']]));
    expect(rows.get('c1')).toMatchObject({ key: 'c1', seg: 1, ext: 'u1', email: 'a@b.io', attrs: { city: 'Oslo' } });
  });
});

describe('key filters sized from the rows read', () => {
  it('know every key noted, those before the filters were made (the sample) and after, as in another segment', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'early-offers-'));
    const sent: string[][] = [];
    const rows = 100_000; // past the sample
    const offers = new EarlyOffers(
      dir,
      def,
      { otherBytes: rows * 250, tableBytes: 1000 },
      1,
      new RingWriter(createRing(1 << 16)),
      (b) => sent.push(b.keys),
    );
    for (let i = 0; i < rows; i++) {
      offers.noteOtherSegment(fnv1a32(`o${i}`));
      offers.keyPassBytes += 250;
    }
    // In another segment: among the first keys noted, the last of the sample, and after it.
    for (const key of ['o0', 'o65535', 'o65536', 'o99999'])
      expect(offers.offer(row(1, [key, 'u', 'a@b.io', 'Oslo'], false)), key).toBe(false);
    expect(offers.offer(row(1, ['c1', 'u1', 'a@b.io', 'Oslo'], false))).toBe(true);
    offers.finish();
    expect(sent.flat()).toEqual(['c1']);
  });

  it('take the memory the rows read call for: five times less for rows five times wider, at most 50 bytes a row taken from a few', () => {
    const sized = (rows: number, rowBytes: number) => {
      const offers = new EarlyOffers(
        dir,
        def,
        { otherBytes: 1e8, tableBytes: 5e7 },
        1,
        new RingWriter(createRing(1 << 16)),
        () => {},
      );
      for (let i = 0; i < rows; i++) {
        offers.noteOtherSegment(fnv1a32(`o${i}`));
        offers.keyPassBytes += rowBytes;
      }
      offers.offer(row(1, ['c1', 'u1', 'a@b.io', 'Oslo'], false));
      const bytes = offers.filterBytes;
      offers.finish();
      return bytes;
    };
    dir = mkdtempSync(path.join(os.tmpdir(), 'early-offers-'));
    const narrow = sized(70_000, 50);
    expect(sized(70_000, 250) / narrow).toBeCloseTo(1 / 5, 1);
    // A thousand wide rows cannot tell: taken as 50 bytes a row.
    expect(sized(1000, 250) / narrow).toBeCloseTo(1, 3);
  });

  it('are made at the first row of the segment read last when no other segment came first', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'early-offers-'));
    const sent: string[][] = [];
    const offers = new EarlyOffers(dir, def, { otherBytes: 0, tableBytes: 1000 }, 1, new RingWriter(createRing(1 << 16)), (b) =>
      sent.push(b.keys),
    );
    expect(offers.offer(row(1, ['c1', 'u1', 'a@b.io', 'Oslo'], false))).toBe(true);
    expect(offers.offer(row(1, ['c1', 'u1', 'a@b.io', 'Rome'], false))).toBe(false);
    offers.finish();
    expect(sent.flat()).toEqual(['c1']);
  });
});
