// Rows that wait. Before the largest segment can be sent early, only the other segments' profile
// keys are needed: their partitions are read for keys, their bytes kept in temp files, and their
// rows taken in later, piece by piece, while the engine thread would otherwise wait for Braze.
import { closeSync, openSync, readSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeWhole } from '../spill/bucket-files';
import type { PartitionSpec } from '../thread/protocol';
import type { OpenPartition } from './partition-readers';

export class DeferredRows {
  /** Partitions whose rows wait, in reading order. */
  private readonly waiting: { spec: PartitionSpec; file: string }[] = [];
  private files = 0;
  /** The partition being read for its keys, its bytes going to `file`. */
  private keeping: { spec: PartitionSpec; file: string; fd: number } | null = null;
  /** The waiting partition being taken in now. */
  private takingIn: { open: OpenPartition; fd: number; file: string } | null = null;
  /** What a waiting partition is read in: one piece per turn, so messages never wait long. */
  private readonly piece = Buffer.allocUnsafe(64 * 1024);

  constructor(
    private readonly tempDir: string,
    /** A reader for a waiting partition's rows. */
    private readonly openRows: (spec: PartitionSpec) => OpenPartition,
  ) {}

  /** Keeps the bytes of the partition about to be read for its keys. */
  keep(spec: PartitionSpec): void {
    const file = path.join(this.tempDir, `deferred-${this.files++}.csv`);
    this.keeping = { spec, file, fd: openSync(file, 'w') };
  }

  /** A chunk of the partition being kept. */
  write(bytes: Uint8Array): void {
    writeWhole(this.keeping!.fd, bytes);
  }

  /** The partition being kept was read whole: its rows wait. */
  kept(): void {
    const k = this.keeping!;
    this.closeKeptFile();
    this.waiting.push({ spec: k.spec, file: k.file });
    this.keeping = null;
  }

  /** Closes the file of the partition being kept (once). */
  closeKeptFile(): void {
    const k = this.keeping;
    if (k && k.fd >= 0) {
      closeSync(k.fd);
      k.fd = -1;
    }
  }

  get pending(): boolean {
    return this.takingIn !== null || this.waiting.length > 0;
  }

  /** Takes in the next piece of the rows that wait; false once none are left. */
  async takeNextPiece(): Promise<boolean> {
    if (!this.takingIn) {
      const next = this.waiting.shift();
      if (!next) return false;
      this.takingIn = { open: this.openRows(next.spec), fd: openSync(next.file, 'r'), file: next.file };
    }
    const t = this.takingIn;
    const n = readSync(t.fd, this.piece, 0, this.piece.length, null);
    if (n > 0) {
      t.open.push(this.piece.subarray(0, n));
      return true;
    }
    closeSync(t.fd);
    rmSync(t.file, { force: true });
    this.takingIn = null;
    await t.open.end();
    return this.waiting.length > 0;
  }

  /** The step failed or ended: the thread may serve the next run, and its descriptors are closed only when it ends. */
  close(): void {
    this.closeKeptFile();
    if (this.takingIn) closeSync(this.takingIn.fd);
    this.takingIn = null;
  }
}
