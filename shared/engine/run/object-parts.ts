// The objects of the first bucket a first run sends, as the engine thread writes them: handed over
// a part at a time (EngineThread.prepare's `inParts`) so that sending starts while the rest of the
// bucket is still being diffed. On one core that bucket's diff, with its code still new, kept
// Braze waiting ~0.2 s after reading; the buckets after it are prepared while one is sent.
import type { ObjectPart } from './buckets-asked';

/** Objects a part holds: ten requests' worth, so the first request waits for few of them. */
export const PART_OBJECTS = 750;

/** The parts of one bucket in the order written, until the bucket itself has come. */
export class ObjectParts {
  private readonly parts: ObjectPart[] = [];
  private wake: (() => void) | null = null;
  private ended = false;
  private dropped = false;

  /** The engine thread's next part (EngineThread.prepare's onPart). */
  readonly push = (part: ObjectPart): void => {
    if (this.dropped) return part.release();
    this.parts.push(part);
    this.wakeUp();
  };

  /** The bucket has come (or failed): no more parts. */
  end(): void {
    this.ended = true;
    this.wakeUp();
  }

  /** The next part; null once the bucket has come and every part before it was taken. */
  async next(): Promise<ObjectPart | null> {
    while (!this.parts.length && !this.ended) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.parts.shift() ?? null;
  }

  /** The bucket is not sent by this attempt: its parts' memory goes back, those still to come included. */
  drop(): void {
    this.dropped = true;
    for (const part of this.parts.splice(0)) part.release();
    this.end();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}
