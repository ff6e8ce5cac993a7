// A prepared bucket set aside on disk while a run is weighed comes back as it was: its objects, its
// send lines, its kept state lines, what it counts, and how its state was read.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StagedBuckets, type Prepared } from '../../shared/engine/run/staged-buckets';
import { SPILL_HEADROOM_BYTES } from '../../shared/engine/spill/run-temp-dir';
import { objectAt } from '../../shared/engine/thread/object-bytes';
import { emptyBucketCounts } from '../../shared/engine/thread/protocol';
import { SendLines } from '../../shared/engine/thread/send-lines';
import { NOTHING } from '../../shared/engine/thread/shared-ring';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

const bytes = (text: string) => new Uint8Array(Buffer.from(text));

/** A bucket of two objects (a profile sent, one leaving), one kept line, and a refusal from an earlier attempt. */
function preparedBucket(released: string[]): Prepared {
  const objects = ['{"external_id":"u1","first_name":"Zoë"}', '{"external_id":"u2","seg":null}'];
  return {
    prepared: {
      bucket: 7,
      header: { definition: 'def', fields: ['email', 'first_name'], membership: { format: 'list', names: ['seg'] } },
      toSend: {
        objects: { ...NOTHING, ends: [] },
        lines: { sent: NOTHING, before: NOTHING, keys: NOTHING },
        leaving: [0, 1],
      },
      // Handed as memory of its own: not something to write into the header.
      kept: { bytes: new Uint8Array(4096) },
      stateChanged: true,
      counts: { ...emptyBucketCounts(), profiles: 2, unchanged: 1, newProfiles: 1 },
      omitted: { email: 1 },
      refusedEarly: [{ key: 'c9', reason: 'bad email' }],
      doneBefore: null,
    },
    objects: { bytes: bytes(objects.join('')), ends: [objects[0]!.length + 1, Buffer.byteLength(objects.join(''))] },
    release: () => released.push('objects'),
    lines: SendLines.of([bytes('c1\te:u1\tfp1\t3\n\n'), bytes('\nc2\te:u2\tfp0\t1\n'), bytes('c1\n"c\\n2"\n')], 2),
    kept: bytes('c3\te:u3\tfp3\t1\n'),
    releaseState: () => released.push('state'),
    etag: '"0x8D"',
    early: false,
    refused: { sentBy: 'run-1', byKey: new Map([['c9', { fp: 'fp9', reason: 'bad email' }]]) },
  };
}

describe('staged buckets', () => {
  it('a bucket set aside comes back byte for byte, and its shared memory is given back at once', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'staged-'));
    dirs.push(dir);
    const staged = new StagedBuckets(dir);
    const released: string[] = [];
    const original = preparedBucket(released);
    await staged.put(original);
    expect(released.sort()).toEqual(['objects', 'state']);

    const back = await staged.take(7);
    await vi.waitFor(() => expect(existsSync(path.join(dir, 'staged-7.bin'))).toBe(false)); // removed through the pool
    for (const j of [0, 1]) {
      expect(Buffer.from(objectAt(back.objects, j))).toEqual(Buffer.from(objectAt(original.objects, j)));
      expect(Buffer.from(back.lines.sentAt(j))).toEqual(Buffer.from(original.lines.sentAt(j)));
      expect(Buffer.from(back.lines.beforeAt(j))).toEqual(Buffer.from(original.lines.beforeAt(j)));
      expect(back.lines.key(j)).toBe(original.lines.key(j));
    }
    expect(back.lines.key(1)).toBe('c\n2');
    expect(Buffer.from(back.kept)).toEqual(Buffer.from(original.kept));
    // The bytes handed between the threads were read already: the header keeps the rest.
    const { toSend, kept: _kept, ...rest } = back.prepared;
    const { toSend: sentBefore, kept: _keptBefore, ...restBefore } = original.prepared;
    expect(rest).toEqual(restBefore);
    expect(toSend.leaving).toEqual(sentBefore.leaving);
    expect([back.etag, back.early]).toEqual([original.etag, original.early]);
    expect(back.refused).toEqual(original.refused);
  });

  it('taken back, its bytes are its own until its objects are answered and its state is written; only then does the next bucket reuse that memory', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'staged-'));
    dirs.push(dir);
    const staged = new StagedBuckets(dir);
    const bucket = (n: number) => ({
      ...preparedBucket([]),
      prepared: { ...preparedBucket([]).prepared, bucket: n },
      kept: bytes(`c${n}\te:u${n}\tfp${n}\t1\n`.repeat(5_000)),
    });
    for (const n of [1, 2, 3]) await staged.put(bucket(n));

    const first = await staged.take(1);
    first.release(); // Braze answered: its state is still being written from these bytes
    const second = await staged.take(2);
    expect(second.kept.buffer).not.toBe(first.kept.buffer);
    expect(Buffer.from(first.kept)).toEqual(Buffer.from(bucket(1).kept));
    first.releaseState();
    first.releaseState();
    const third = await staged.take(3);
    expect(third.kept.buffer).toBe(first.kept.buffer);
    expect(Buffer.from(third.kept)).toEqual(Buffer.from(bucket(3).kept));
    expect(Buffer.from(second.kept)).toEqual(Buffer.from(bucket(2).kept));
  });

  it('fits only with the headroom the spill keeps beside it; a disk that cannot be measured lets it try', () => {
    const staged = new StagedBuckets(os.tmpdir());
    const p = preparedBucket([]);
    const size = p.objects.bytes.length + p.lines.columns.reduce((n, c) => n + c.length, 0) + p.kept.length;
    expect(staged.fits(p, size + SPILL_HEADROOM_BYTES)).toBe(true);
    expect(staged.fits(p, size + SPILL_HEADROOM_BYTES - 1)).toBe(false);
    expect(staged.fits(p, null)).toBe(true);
  });
});
