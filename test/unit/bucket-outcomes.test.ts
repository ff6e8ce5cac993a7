// What a bucket's state says after Braze answered: the line of what Braze took, else the line of what
// it had before, and every refusal in the rejected-rows report under its profile's key.
import { describe, expect, it } from 'vitest';
import type { BrazeClient } from '../../shared/braze/client';
import type { Outcome } from '../../shared/braze/batch';
import { BatchSender } from '../../shared/engine/send/batch-sender';
import { BucketOutcomes, recordOutcomes } from '../../shared/engine/send/bucket-outcomes';
import { emptyBucketCounts, type PreparedBucket, type RejectedRow } from '../../shared/engine/thread/protocol';
import { SendLines, SendLinesBuilder } from '../../shared/engine/thread/send-lines';
import { createRing, RingReader, RingWriter } from '../../shared/engine/thread/shared-ring';

interface Queued {
  key: string;
  sent: string;
  before: string;
  leaving: 0 | 1 | 2;
}

/** A bucket's send lines through the ring, as the bucket step hands them over, and its outcomes recorded. */
function record(queued: Queued[], outcomes: Outcome[]) {
  const builder = new SendLinesBuilder();
  for (const q of queued) builder.add(q.key, q.sent, q.before);
  const share = createRing(1 << 16);
  const handed = builder.handOver(new RingWriter(share));
  const { lines } = SendLines.receive(new RingReader(share), handed, queued.length);
  const leaving = queued.map((q) => q.leaving);
  const prepared = { counts: emptyBucketCounts(), toSend: { leaving }, refusedEarly: [] } as unknown as PreparedBucket;
  const rejected: RejectedRow[] = [];
  const pieces = recordOutcomes(prepared, lines, outcomes, (row) => rejected.push(row));
  return {
    state: Buffer.concat(pieces).toString('utf8'),
    pieces: pieces.length,
    counts: prepared.counts,
    rejected: rejected.map((r) => [r.profileId, r.reason]),
  };
}

const sent: Outcome = { status: 'sent' };
const failed: Outcome = { status: 'failed', reason: 'Braze answered 503' };
const rejected = (reason: string): Outcome => ({ status: 'rejected', reason });
const changed = (key: string, before = ''): Queued => ({ key, sent: `${key}\te:${key}\tNEW`, before, leaving: 0 });

describe('recordOutcomes', () => {
  it('keeps every line of what Braze took, in order, when it took everything', () => {
    const queued = [changed('c1'), changed('c2', 'c2\te:c2\tOLD'), changed('c3')];
    const r = record(queued, [sent, sent, sent]);
    expect(r.state).toBe('c1\te:c1\tNEW\nc2\te:c2\tNEW\nc3\te:c3\tNEW\n');
    expect(r.counts).toMatchObject({ sent: 3, failed: 0, rejected: 0 });
    expect(r.rejected).toEqual([]);
  });

  it('keeps what Braze had before for a profile it did not take, and retries a failed removal', () => {
    const queued: Queued[] = [
      changed('c1'),
      changed('c2', 'c2\te:c2\tOLD'), // failed: Braze still has OLD
      changed('c3'), // new and refused: nothing to keep
      { key: 'c4', sent: '', before: 'c4\te:c4\tGONE', leaving: 1 }, // removal failed: tried again next run
      { key: 'c5', sent: '', before: 'c5\te:c5\tGONE', leaving: 1 }, // removed
      changed('c6'),
      { key: 'c6', sent: '', before: '', leaving: 2 }, // its old identity's membership: refused
      changed('c7'),
      changed('c8'),
    ];
    const r = record(queued, [sent, failed, rejected('invalid email'), failed, sent, sent, rejected('no such user'), sent, sent]);
    expect(r.state.split('\n')).toEqual([
      'c1\te:c1\tNEW',
      'c2\te:c2\tOLD',
      'c4\te:c4\tGONE',
      'c6\te:c6\tNEW',
      'c7\te:c7\tNEW',
      'c8\te:c8\tNEW',
      '',
    ]);
    // c7 and c8, taken one after another, go as one piece (c6's line is apart: a withdrawal came between).
    expect(r.pieces).toBe(5);
    expect(r.counts).toMatchObject({ sent: 4, failed: 1, rejected: 1, removed: 1, removalsFailed: 1 });
    expect(r.rejected).toEqual([
      ['c3', 'invalid email'],
      ['c6', 'removal refused: no such user'],
    ]);
  });

  it('reports a refused profile under its key whatever the key holds', () => {
    const odd = 'line\nbreak';
    const quoted = '"quoted"';
    const queued = [changed('c1'), { ...changed('x'), key: odd }, { ...changed('y'), key: quoted }];
    const r = record(queued, [sent, rejected('bad'), rejected('worse')]);
    expect(r.rejected).toEqual([
      [odd, 'bad'],
      [quoted, 'worse'],
    ]);
    expect(r.state).toBe('c1\te:c1\tNEW\n');
  });
});

describe('BucketOutcomes', () => {
  it('says, a batch or more at a time, how many objects from the first are answered: never past one still unanswered', async () => {
    const reported: number[] = [];
    const bucket = new BucketOutcomes(300, (count) => reported.push(count));
    const batch = (from: number, to: number) => {
      for (let i = from; i < to; i++) bucket.take(i, sent);
    };
    batch(75, 150); // the second batch answered first: the first 75 are not
    expect(reported).toEqual([]);
    batch(0, 75);
    expect(reported).toEqual([150]); // both at once
    batch(150, 200); // less than a batch more
    expect(reported).toEqual([150]);
    batch(200, 299);
    expect(reported).toEqual([150, 225]); // 75 more at 225; the 74 after, not yet
    bucket.take(299, failed); // the last: every object answered, the whole bucket follows
    expect(await bucket.all).toHaveLength(300);
    expect(reported).toEqual([150, 225]);
  });

  it('says every object is done with once the ones before those copied out are answered, the copied ones still unanswered', () => {
    const reported: number[] = [];
    const bucket = new BucketOutcomes(100, (count) => reported.push(count));
    for (let i = 0; i < 60; i++) bucket.take(i, sent);
    bucket.copiedFrom(90); // 90..99 wait for the next bucket's objects to fill a batch
    expect(reported).toEqual([]); // 60..89 are still on their way
    for (let i = 60; i < 90; i++) bucket.take(i, sent);
    expect(reported).toEqual([75, 100]); // a batch's worth, then all: 90..99 are copies
    for (let i = 90; i < 100; i++) bucket.take(i, sent);
    expect(reported).toEqual([75, 100]); // said once
  });
});

describe('BatchSender', () => {
  it('sends the objects held for a batch as they were when copied out, whatever their memory holds after', async () => {
    const got: string[][] = [];
    const braze = {
      track: (objects: Uint8Array[]) => {
        got.push(objects.map((o) => Buffer.from(o).toString('utf8')));
        return Promise.resolve(objects.map((): Outcome => sent));
      },
      requestsWaiting: 0,
    } as unknown as BrazeClient;
    const sender = new BatchSender<number>(braze, 2, () => undefined);
    const memory = Buffer.from('{"a":1}{"b":2}');
    sender.add(memory.subarray(0, 7), 0);
    sender.add(memory.subarray(7), 1);
    expect(sender.copyHeld()).toEqual([0, 1]);
    memory.fill(0x20); // the ring's room, used again
    await sender.finish();
    expect(got).toEqual([['{"a":1}', '{"b":2}']]);
  });

  it('queues no more batches before the budget once 48 wait for their slot, but a sender with none under way may always send', async () => {
    const answers: (() => void)[] = [];
    const braze = {
      track: (objects: Uint8Array[]) =>
        new Promise<Outcome[]>((resolve) => answers.push(() => resolve(objects.map((): Outcome => sent)))),
      requestsWaiting: 48, // another sender's batches fill the queue
    } as unknown as BrazeClient;
    const sender = new BatchSender<number>(braze, 200, () => undefined);
    expect(sender.room()).toBeNull(); // nothing of its own under way: no answer would wake it
    sender.add(Buffer.from('{}'), 0);
    sender.flush();
    const room = sender.room();
    expect(room).not.toBeNull();
    (braze as unknown as { requestsWaiting: number }).requestsWaiting = 47;
    answers.shift()!();
    await room; // woken by its batch's answer, with room in the queue again
    expect(sender.room()).toBeNull();
  });
});
