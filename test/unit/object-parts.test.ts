// The first bucket's objects as they come in parts: taken in the order they came, and given back
// (their shared memory) when the bucket is not sent after all, those that come later included.
import { describe, expect, it } from 'vitest';
import { ObjectParts } from '../../shared/engine/run/object-parts';

const part = (name: string, released: string[]) => ({
  objects: { bytes: new Uint8Array(0), ends: [] },
  release: () => released.push(name),
});

describe('ObjectParts', () => {
  it('gives the parts in the order they came, waiting for the next, and null once the bucket came', async () => {
    const parts = new ObjectParts();
    const released: string[] = [];
    const a = part('a', released);
    const b = part('b', released);
    parts.push(a);
    expect(await parts.next()).toBe(a);
    const waiting = parts.next();
    parts.push(b);
    expect(await waiting).toBe(b);
    const last = parts.next();
    parts.end();
    expect(await last).toBeNull();
    expect(released).toEqual([]); // the sender releases them once Braze has answered
  });

  it('dropped, releases the parts it holds and every part that comes after', async () => {
    const parts = new ObjectParts();
    const released: string[] = [];
    parts.push(part('a', released));
    parts.drop();
    parts.push(part('b', released));
    expect(released).toEqual(['a', 'b']);
    expect(await parts.next()).toBeNull();
  });
});
