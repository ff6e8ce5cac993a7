// What a bucket sends, built by the bucket step: each object as bytes, with its key and the state
// line to keep whether Braze takes it or not; and what a changed profile or a leaver must lose.
import type { IdentifierBytes } from '../profile/line-object';
import type { BrazeObjectWriter } from '../profile/object-writer';
import type { ByteRange } from '../spill/bucket-files';
import type { MergedProfile } from '../profile/merge';
import { ObjectBytes } from '../thread/object-bytes';
import { SendLinesBuilder } from '../thread/send-lines';
import type { BucketRings, ToSend } from '../thread/protocol';
import type { BucketState } from '../state/state-entries';
import { stateLine, type StateEntry } from '../state/state-line';

/**
 * Where a bucket's objects and send lines are written: kept by the bucket step and used again for
 * each bucket (their memory stays the thread's instead of a few MB allocated and dropped per bucket,
 * which the thread's allocator held on to: ~30–40 MB of a wide first run's peak RSS).
 */
export interface SendBuffers {
  objects: ObjectBytes;
  lines: SendLinesBuilder;
}

export const sendBuffers = (): SendBuffers => ({ objects: new ObjectBytes(), lines: new SendLinesBuilder() });

/** What a bucket sends: the objects, as bytes, each with its key and its state line either way. */
export class BucketSends {
  readonly objects: ObjectBytes;
  private readonly lines: SendLinesBuilder;
  private readonly leaving: number[] = [];
  /**
   * Membership written under earlier settings that these do not write: withdrawn from every
   * profile that had it (they are all sent anyway: changed settings resend everything).
   */
  private readonly withdrawals: string;

  constructor(
    private readonly writer: BrazeObjectWriter,
    private readonly previous: BucketState,
    buffers: SendBuffers = sendBuffers(),
  ) {
    ({ objects: this.objects, lines: this.lines } = buffers);
    // Empty already, unless the bucket before failed halfway: none of it may go with this one.
    this.objects.clear();
    this.lines.clear();
    this.withdrawals = writer.withdrawals(previous.membership);
  }

  /** A changed profile (its object is the last in `objects`): queued with what Braze must lose. */
  changed(
    key: string,
    merged: MergedProfile,
    identity: string,
    fp: string,
    before: StateEntry | undefined,
    rowsDigest: string | undefined,
  ): void {
    const { writer, previous, objects } = this;
    const heldFields = writer.heldFieldBits(merged, before, previous.fields);
    // Values emptied in CI since Braze got them are cleared (null, once); membership written
    // under earlier settings is withdrawn — at the same user, or the one it was known as before.
    const identityChanged = before !== undefined && before.identity !== identity;
    const extras = before && !identityChanged ? writer.clears(merged, before, previous.fields) + this.withdrawals : '';
    if (extras) {
      objects.dropLast();
      objects.add(writer.profile(merged, extras));
    }
    this.queueChanged(key, identity, fp, heldFields, rowsDigest, before);
    if (identityChanged) {
      objects.add(writer.leaver(before.identity, previous.membership));
      this.queue(key, '', undefined, 2);
    }
  }

  /**
   * A changed profile Braze was never sent under this export (no state before: nothing to clear or
   * withdraw), its object the last in `objects`, with its `heldFields` bits: queued.
   */
  changedNew(key: string, identity: string, fp: string, heldFields: string, rowsDigest: string | undefined): void {
    this.queueChanged(key, identity, fp, heldFields, rowsDigest, undefined);
  }

  /**
   * As changedNew(), for a profile whose key and identifier can be written as they are (see
   * SendLinesBuilder.addNew): no string is made of either.
   */
  changedNewPlain(
    key: ByteRange,
    identifier: IdentifierBytes,
    fp: string,
    heldFields: string,
    rowsDigest: string | undefined,
  ): void {
    this.lines.addNew(key, identifier, fp, heldFields, rowsDigest);
    this.leaving.push(0);
  }

  private queueChanged(
    key: string,
    identity: string,
    fp: string,
    heldFields: string,
    rowsDigest: string | undefined,
    before: StateEntry | undefined,
  ): void {
    const line = rowsDigest === undefined ? { identity, fp, heldFields } : { identity, fp, heldFields, rowsDigest };
    this.queue(key, stateLine(key, line), before, 0);
  }

  /** A profile that left every segment: its membership is removed. */
  leaver(key: string, before: StateEntry): void {
    this.objects.add(this.writer.leaver(before.identity, this.previous.membership));
    this.queue(key, '', before, 1);
  }

  /** To the main thread: the objects through their ring (waiting up to `waitForRoomMs` for room there), the lines through theirs. */
  handOver(rings: BucketRings, waitForRoomMs = 0): ToSend {
    return {
      objects: this.objects.handOver(rings.objects, waitForRoomMs),
      lines: this.lines.handOver(rings.state),
      leaving: this.leaving,
    };
  }

  /** Queues an object already added to `objects`. */
  private queue(key: string, sentLine: string, before: StateEntry | undefined, leaving: 0 | 1 | 2): void {
    this.lines.add(key, sentLine, before ? stateLine(key, before) : '');
    this.leaving.push(leaving);
  }
}
