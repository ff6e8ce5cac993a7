// Buckets handed from the engine thread to the main thread, one after another: through the shared
// ring when it has room, or as memory of their own, transferred (the builders then go on in new memory).
import { describe, expect, it } from 'vitest';
import { ObjectBytes, objectAt, receiveObjects } from '../../shared/engine/thread/object-bytes';
import { SendLines, SendLinesBuilder, transferredWithLines } from '../../shared/engine/thread/send-lines';
import { createRing, RingReader, RingWriter, transferredWith } from '../../shared/engine/thread/shared-ring';

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

/** A bucket of `n` profiles: each one's object, key and state lines. */
const bucket = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    json: `{"external_id":"${tag}${i}","email":"${tag}${i}@example.com"}`,
    key: `${tag}-key-${i}`,
    sent: `${tag}-key-${i}\te:${tag}${i}\tfp${i}\t3`,
    before: i % 2 ? `${tag}-key-${i}\te:${tag}${i}\told\t3` : '',
  }));

describe('buckets handed over one after another', () => {
  it.each([
    ['a ring with room for them', 1 << 16],
    ['a ring too small for them (transferred)', 64],
  ])('arrive whole and alone through %s', (_, ringBytes) => {
    const [objectsRing, stateRing] = [createRing(ringBytes), createRing(ringBytes)];
    const writers = { objects: new RingWriter(objectsRing), state: new RingWriter(stateRing) };
    const readers = { objects: new RingReader(objectsRing), state: new RingReader(stateRing) };
    const objects = new ObjectBytes();
    const lines = new SendLinesBuilder();
    // A larger bucket, then a smaller one: nothing of the first may show in the second.
    for (const profiles of [bucket('a', 300), bucket('b', 40)]) {
      for (const p of profiles) {
        objects.add(p.json);
        lines.add(p.key, p.sent, p.before);
      }
      const handed = { objects: objects.handOver(writers.objects), lines: lines.handOver(writers.state) };
      // As postMessage carries them to the main thread: what is not in the ring is transferred.
      const arrived = structuredClone(handed, {
        transfer: [...transferredWith(handed.objects), ...transferredWithLines(handed.lines)],
      });
      const { list, release } = receiveObjects(readers.objects, arrived.objects);
      const received = SendLines.receive(readers.state, arrived.lines, profiles.length);
      expect(list.ends).toHaveLength(profiles.length);
      profiles.forEach((p, j) => {
        expect(text(objectAt(list, j))).toBe(p.json);
        expect(received.lines.key(j)).toBe(p.key);
        expect(received.lines.sentLine(j)).toBe(p.sent);
        expect(text(received.lines.beforeAt(j))).toBe(p.before ? `${p.before}\n` : '');
      });
      release();
      received.release();
    }
  });
});
