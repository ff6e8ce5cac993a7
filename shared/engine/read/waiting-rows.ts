// Rows that wait in temp files to be taken in (sending while reading: see
// PartitionStep.startPartition), a piece at a time. The segments are taken in side by side, each
// as far along as the others in proportion to its size: how many rows can be sent at once (those
// of a profile with no other row) differs much from one segment to another, and taking one
// segment after the other would leave Braze waiting through the segments that have few.
// Each segment's partitions keep their order (the first row of a segment wins a merge).
import { closeSync, openSync, readSync, rmSync } from 'node:fs';
import type { PartitionSpec } from '../thread/protocol';
import { ended, type OpenPartition } from './csv-feed';

interface WaitingPartition {
  spec: PartitionSpec;
  file: string;
}

interface Segment {
  waiting: WaitingPartition[];
  /** The partition being taken in. */
  current: { open: OpenPartition; fd: number; file: string } | null;
  bytes: number;
  done: number;
}

export class WaitingRows {
  private readonly segments = new Map<string, Segment>();
  /** What a piece is read in: one per turn, so messages never wait long. */
  private readonly piece = Buffer.allocUnsafe(64 * 1024);

  constructor(
    /** Starts reading a partition's rows (mapped, then spilled or sent). */
    private readonly open: (spec: PartitionSpec) => OpenPartition,
  ) {}

  /** A partition whose rows wait in `file` (`bytes` long). */
  add(spec: PartitionSpec, file: string, bytes: number): void {
    let s = this.segments.get(spec.segment);
    if (!s) this.segments.set(spec.segment, (s = { waiting: [], current: null, bytes: 0, done: 0 }));
    s.waiting.push({ spec, file });
    s.bytes += bytes;
  }

  get any(): boolean {
    for (const s of this.segments.values()) if (s.current || s.waiting.length) return true;
    return false;
  }

  /** Takes in the next piece (of the segment least far along); false once no rows wait. */
  async next(): Promise<boolean> {
    let s: Segment | null = null;
    for (const candidate of this.segments.values()) {
      if (!candidate.current && candidate.waiting.length === 0) continue;
      if (!s || candidate.done / (candidate.bytes || 1) < s.done / (s.bytes || 1)) s = candidate;
    }
    if (!s) return false;
    if (!s.current) {
      const next = s.waiting.shift()!;
      s.current = { open: this.open(next.spec), fd: openSync(next.file, 'r'), file: next.file };
    }
    const r = s.current;
    const n = readSync(r.fd, this.piece, 0, this.piece.length, null);
    if (n > 0) {
      s.done += n;
      r.open.feed.push(r.open.decoder.decode(this.piece.subarray(0, n), { stream: true }));
      return true;
    }
    closeSync(r.fd);
    rmSync(r.file, { force: true });
    s.current = null;
    await ended(r.open);
    return this.any;
  }
}
