// The main thread's side of the engine's worker thread (engine-thread.ts). Partition step: downloads
// each CSV partition and hands the bytes to the thread a few chunks ahead, or gives the thread a
// grant to download it itself (see engine-threads.ts), and sends what the thread hands back while
// reading (bounded input keeps memory flat; pausing when Braze is the bottleneck keeps the send
// queue short). Bucket step: asks for buckets to be prepared (buckets-asked.ts takes what comes back).
import type { Worker } from 'node:worker_threads';
import type { ContainerClient } from '@azure/storage-blob';
import type { SegmentTable } from '../../snapshot/locate';
import type { EarlySender } from '../send/early-sender';
import { receiveObjects } from '../thread/object-bytes';
import { BucketsAsked, type ReceivedBucket } from './buckets-asked';
import { PartitionAborted } from '../read/column-check';
import { downloadPartition } from '../read/partition-download';
import { sdkChunks } from '../read/sdk-download';
import { downloadGrant, proxyInEnvironment, type BlobGrant } from '../../store/blob-grant';
import { RunStopped } from '../control/stop';
import { giveBack, takeThread, type ThreadLimits } from './thread-pool';
import { threadFile } from './thread-sizing';
import type {
  EarlyMark,
  EngineRings,
  FromEngineThread,
  PartitionInit,
  PartitionSpec,
  PartitionSummary,
  ToEngineThread,
} from '../thread/protocol';
import {
  createRing,
  freeNow,
  joined,
  RingReader,
  RingWriter,
  transferredWith,
  type Handed,
  type RingSlice,
} from '../thread/shared-ring';

/** How often a run waiting for the thread to read a partition looks whether it is asked to stop. */
const STOP_CHECK_MS = 250;
/** Chunks handed to the thread and not yet parsed. */
const CHUNKS_AHEAD = 4;
/**
 * The download's chunks (64 KB from a socket) are gathered back to back in the ring and handed over
 * about this many bytes at a time: a quarter of the messages each way. Not in the segment sent
 * early: there a chunk brings batches to send, and reading waits for Braze between chunks, so
 * chunks as downloaded keep what is queued ahead of Braze (and what a kill may resend) tight.
 */
const CHUNK_BYTES = 256 * 1024;
/** What a socket reads at once where this thread downloads (over https, TLS hands over 16 KB at most). */
const SOCKET_CHUNK_BYTES = 64 * 1024;
/**
 * Shared memory for CSV chunks going in (CHUNKS_AHEAD of them, and one being gathered, each up to
 * CHUNK_BYTES and a downloaded chunk; room left for a wrap) and objects coming out (while reading,
 * up to 0.6 s of sending queued ahead of Braze: ~600 batches of plain profiles; then the buckets
 * under way: two prepared ahead, the one being sent and the unanswered batches of the two before
 * it, ~3 MB each with wide rows; more goes the ordinary way, as a fresh buffer on the main thread, which is
 * what the ring is there to avoid: at 8 MB, 40 % of a wide first run's buckets did). It counts in
 * peak memory, so no bigger than that.
 */
const CHUNK_RING_BYTES = 2 * 1024 * 1024;
const OBJECT_RING_BYTES = 16 * 1024 * 1024;
/** A prepared bucket's state lines (~90 bytes a profile) for a few buckets, the same way. */
const STATE_RING_BYTES = 4 * 1024 * 1024;

export interface PartitionRun {
  /** In reading order. */
  tables: SegmentTable[];
  container: ContainerClient;
  early: EarlySender | null;
  shouldYield?: () => boolean;
  /**
   * The thread downloads the partitions it reads itself, all but the segment sent early (see
   * readOnThread); otherwise this thread downloads them and hands them over.
   */
  threadDownloads?: boolean;
  /** Asked per chunk: true = stop reading (and sending) now; partition() throws RunStopped. */
  shouldStop?: () => boolean;
  /** Called per chunk while sending early: time for a checkpoint of what was sent? */
  onChunkSent?: () => void;
  onProgress: (rowsRead: number, segmentRows: Record<string, number>) => void;
}

export class EngineThread {
  private readonly thread: Worker;
  private failure: unknown = null;
  private closed = false;
  private chunksAhead = 0;
  private partitionDone = false;
  private summary: PartitionSummary | null = null;
  private early: EarlySender | null = null;
  private onProgress: PartitionRun['onProgress'] = () => undefined;
  private readonly waiting: (() => void)[] = [];
  /** Batches sent early received so far, and who waits for a checkpoint mark. */
  private batchesReceived = 0;
  /** The engine thread's answer to the last takeIn: whether more rows wait, and whether that piece sent any. */
  private tookIn: { more: boolean; sent: boolean } | null = null;
  private marked: { resolve: (mark: EarlyMark) => void; reject: (e: unknown) => void } | null = null;
  private readonly asked: BucketsAsked;
  private readonly rings: EngineRings;
  private readonly chunkRing: RingWriter;
  /** Downloaded chunks in the ring not yet handed to the thread, as one slice. */
  private gathered: RingSlice | null = null;
  private readonly objectRing: RingReader;
  private readonly stateRing: RingReader;

  constructor(
    private readonly init: PartitionInit,
    private readonly limits: ThreadLimits,
  ) {
    const pooled = takeThread(threadFile(), this.limits);
    this.thread = pooled.worker;
    this.rings = pooled.rings ?? {
      chunks: createRing(CHUNK_RING_BYTES),
      objects: createRing(OBJECT_RING_BYTES),
      state: createRing(STATE_RING_BYTES),
    };
    this.thread.on('message', (m: FromEngineThread) => {
      try {
        this.handle(m);
      } catch (e) {
        this.fail(e);
      }
      this.wake();
    });
    this.thread.on('error', (e) => this.fail(e));
    this.thread.on('exit', (code) => this.fail(new Error(`the engine thread stopped (exit code ${code})`)));
    this.chunkRing = new RingWriter(this.rings.chunks);
    this.objectRing = new RingReader(this.rings.objects);
    this.stateRing = new RingReader(this.rings.state);
    this.asked = new BucketsAsked({ objects: this.objectRing, state: this.stateRing });
    this.post({ t: 'init', init, rings: this.rings });
  }

  /** Reads the snapshot's tables in order, spilling by bucket (and sending early, if set up). */
  async partition(run: PartitionRun): Promise<PartitionSummary> {
    const stopped = await this.readTables(run);
    if (run.early && !stopped) await this.takeInSendingSingles(run);
    this.post({ t: 'finish' });
    await this.until(() => this.summary !== null);
    return this.summary!;
  }

  /**
   * Downloads and hands over `run.tables`' partitions, in order, or has the thread download them
   * (`threadDownloads`; the segment sent early is always downloaded here, paced by Braze, and all of
   * them when the environment names a proxy, through the SDK, which takes it). True if sending early
   * stopped (time box).
   */
  async readTables(run: PartitionRun): Promise<boolean> {
    this.early = run.early;
    this.onProgress = run.onProgress;
    let stopped = false;
    const parts = run.tables.flatMap((table) => table.partitions.map((partition) => ({ table, partition })));
    const sendingAt = (at: number) => run.early !== null && parts[at]!.table.segment === this.init.early?.segment;
    const onThread = (at: number) => at < parts.length && run.threadDownloads === true && !sendingAt(at) && !proxyInEnvironment();
    const grantFor = (at: number) => downloadGrant(run.container.getBlobClient(parts[at]!.partition.blobName));
    /** The grant of the partition the thread downloads next, sent with the one before it (see PartitionStep.download). */
    let nextGrant: BlobGrant | null = null;
    for (const [at, { table, partition }] of parts.entries()) {
      const sending = sendingAt(at);
      this.partitionDone = false;
      const spec = {
        segment: table.segment,
        columns: table.columns,
        blobName: partition.blobName,
        delimiter: partition.delimiter,
        hasHeader: partition.hasHeader,
      };
      if (onThread(at)) {
        const grant = nextGrant ?? (await grantFor(at));
        nextGrant = onThread(at + 1) ? await grantFor(at + 1) : null;
        await this.readOnThread(run, spec, grant, nextGrant);
        continue;
      }
      this.post({ t: 'partition', spec, grant: null });
      if (!proxyInEnvironment()) stopped = await this.downloadHere(run, partition.blobName, sending, stopped);
      else stopped = await this.downloadThroughSdk(run, partition.blobName, sending, stopped);
      this.handGathered();
      this.post({ t: 'end' });
      await this.until(() => this.partitionDone);
    }
    return stopped;
  }

  /**
   * A partition downloaded here, through the GET the engine thread uses (store/blob-download.ts),
   * its bytes gathered into the ring: no fresh memory per chunk for this thread's garbage collector.
   * Chunks as a socket reads them (64 KB over http, 16 KB over https, as the SDK's), so the segment
   * sent early stays paced as tightly; every request after the first with a fresh grant, as paced
   * by Braze the download may outlive one. Returns whether sending early stopped (time box).
   */
  private async downloadHere(run: PartitionRun, blobName: string, sending: boolean, stopped: boolean): Promise<boolean> {
    const blob = run.container.getBlobClient(blobName);
    const regrant = () => downloadGrant(blob);
    /** The wait before the next gathered chunk is over (its bytes, handed again, are taken). */
    let cleared = false;
    const push = (bytes: Buffer): void | Promise<void> => {
      if (run.shouldStop?.()) throw new RunStopped();
      if (!this.gathered && !cleared) {
        const next = this.beforeChunk(run, sending, stopped);
        if (typeof next !== 'boolean') {
          return next.then((s) => {
            stopped = s;
            cleared = true;
          });
        }
        stopped = next;
      }
      cleared = false;
      this.gather(bytes, false, sending);
    };
    await downloadPartition(await regrant(), blobName, push, { readBytes: SOCKET_CHUNK_BYTES, regrant });
    return stopped;
  }

  /** A partition downloaded through the SDK, which takes a proxy named in the environment. */
  private async downloadThroughSdk(run: PartitionRun, blobName: string, sending: boolean, stopped: boolean): Promise<boolean> {
    for await (const chunk of await sdkChunks(run.container, blobName)) {
      if (run.shouldStop?.()) throw new RunStopped();
      if (!this.gathered) stopped = await this.beforeChunk(run, sending, stopped);
      this.gather(chunk, true, sending);
    }
    return stopped;
  }

  /**
   * A partition downloaded and read by the thread itself (read/partition-download.ts): it never
   * crosses this thread. Woken by the thread's progress, and every STOP_CHECK_MS, so that a run
   * asked to stop stops within a second.
   */
  private async readOnThread(run: PartitionRun, spec: PartitionSpec, grant: BlobGrant, next: BlobGrant | null): Promise<void> {
    this.post({ t: 'partition', spec, grant, next });
    const tick = setInterval(() => this.wake(), STOP_CHECK_MS);
    try {
      await this.until(() => this.partitionDone || run.shouldStop?.() === true);
    } finally {
      clearInterval(tick);
    }
    if (!this.partitionDone) throw new RunStopped(); // closing the run ends the thread, and its download
  }

  /**
   * Before a chunk is gathered: the thread has room for it and, while sending early, Braze has
   * caught up. Returns whether sending early stopped (time box): at once where nothing need be
   * waited for, else once the wait is over.
   */
  private beforeChunk(run: PartitionRun, sending: boolean, stopped: boolean): boolean | Promise<boolean> {
    if (this.failure) throw this.failure;
    if (this.chunksAhead >= CHUNKS_AHEAD) {
      return this.until(() => this.chunksAhead < CHUNKS_AHEAD).then(() => this.beforeChunk(run, sending, stopped));
    }
    if (!sending) return stopped;
    if (!stopped && run.shouldYield?.()) {
      stopped = true;
      this.post({ t: 'stopSending' }); // what is left waits for the continuation
    }
    // Reading pauses while Braze is behind, until it has caught up (not just for one answer: a
    // chunk brings many batches), so what waits to be sent stays bounded.
    const room = run.early!.room();
    if (!room) {
      run.onChunkSent?.();
      return stopped;
    }
    this.post({ t: 'brazeBehind' }); // the thread may catch up on other work meanwhile
    return (async () => {
      for (let r: Promise<void> | null = room; r; r = run.early!.room()) await r;
      run.onChunkSent?.();
      return stopped;
    })();
  }

  /**
   * The segment read last is read: the other segments' rows that waited are taken in a piece at a
   * time, and those whose profile has no other row are sent too — paced by Braze, as chunks are.
   */
  private async takeInSendingSingles(run: PartitionRun): Promise<void> {
    for (let last = { more: true, sent: true }; last.more;) {
      if (run.shouldStop?.()) throw new RunStopped();
      // Only pieces that send wait for Braze: the others are taken in at full speed.
      if (last.sent) for (let room = run.early!.room(); room; room = run.early!.room()) await room;
      run.onChunkSent?.();
      this.tookIn = null;
      this.post({ t: 'takeIn' });
      await this.until(() => this.tookIn !== null);
      last = this.tookIn!;
    }
  }

  /** Asks for a checkpoint mark of what was sent early (one at a time). */
  earlyMark(): Promise<EarlyMark> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.marked) return Promise.reject(new Error('a checkpoint mark is already asked for')); // one at a time
    return new Promise((resolve, reject) => {
      this.marked = { resolve, reject };
      this.post({ t: 'earlyMark' });
    });
  }

  /** Merges and diffs one bucket against its state blob, downloaded to `stateFile` (null: none), after partition(). */
  prepare(bucket: number, stateFile: string | null): Promise<ReceivedBucket> {
    if (this.failure) return Promise.reject(this.failure);
    const received = this.asked.ask(bucket);
    this.post({ t: 'prepare', bucket, stateFile });
    return received;
  }

  async close(): Promise<void> {
    for (const event of ['message', 'error', 'exit']) this.thread.removeAllListeners(event);
    const reusable = this.endedCleanly;
    // Whoever still waits on the thread (a partition() beside one that failed) stops waiting, and
    // nothing more of this run reaches the thread, which may serve another run now.
    this.fail(new Error('the engine thread was closed'));
    this.closed = true;
    // Rings with bytes still in use (objects Braze has not answered yet) are not handed on.
    const rings = this.chunkRing.drained && this.objectRing.drained && this.stateRing.drained ? this.rings : null;
    if (reusable)
      return giveBack({ worker: this.thread, rings }, threadFile(), this.limits, { t: 'reset' } satisfies ToEngineThread);
    await this.thread.terminate();
  }

  /** Read to the end, every bucket asked for answered, nothing failed: the thread may serve the next run. */
  private get endedCleanly(): boolean {
    return this.failure === null && this.summary !== null && this.asked.size === 0 && this.marked === null;
  }

  private handle(m: FromEngineThread): void {
    switch (m.t) {
      case 'send': {
        this.batchesReceived++;
        const { list, release } = receiveObjects(this.objectRing, m.objects);
        return this.early!.send({ objects: list, buckets: m.buckets, keys: m.keys }, release);
      }
      case 'earlyMarked': {
        const marked = this.marked;
        this.marked = null;
        return marked?.resolve({ batches: this.batchesReceived, sizes: m.sizes });
      }
      case 'chunkDone':
        this.chunksAhead--;
        return;
      case 'progress':
        return this.onProgress(m.rowsRead, m.segmentRows);
      case 'partitionDone':
        this.partitionDone = true;
        return;
      case 'tookIn':
        this.tookIn = { more: m.more, sent: m.sent };
        return;
      case 'finished':
        this.summary = m.summary;
        return;
      case 'prepared':
        return this.asked.received(m.prepared);
      case 'error':
        return this.fail(m.aborted ? new PartitionAborted(m.message) : new Error(`the engine thread failed: ${m.message}`));
    }
  }

  /**
   * Copies a downloaded chunk into the ring, after what is gathered there, or (no room there) hands
   * it over in a copy the thread can own: the download's buffers may share memory with others. A
   * chunk with memory of its own (a socket's body chunks have) then gives it back at once: on the
   * main thread every fresh ArrayBuffer counts as external memory until a scavenge frees it, the
   * main thread scavenges seldom, and chunks left for the next scavenge started a full mark-compact
   * about every 7–10 MB downloaded. What is gathered is handed over once it is a chunk's worth (each
   * chunk, while sending early).
   */
  private gather(chunk: Buffer, ownMemory: boolean, sending: boolean): void {
    const slice = this.chunkRing.write(chunk);
    if (slice) {
      const longer = this.gathered && joined(this.gathered, slice);
      if (!longer) this.handGathered(); // the ring wrapped: what was gathered goes first
      this.gathered = longer || slice;
    } else {
      this.handGathered();
      const bytes = new Uint8Array(chunk.byteLength);
      bytes.set(chunk);
      this.hand({ bytes });
    }
    if (ownMemory) freeNow(chunk); // never a reused buffer's: the socket reads into it again
    if (this.gathered && (sending || this.gathered.length >= CHUNK_BYTES)) this.handGathered();
  }

  private handGathered(): void {
    if (!this.gathered) return;
    this.hand({ slice: this.gathered });
    this.gathered = null;
  }

  private hand(handed: Handed): void {
    if (this.closed) throw this.failure;
    this.chunksAhead++;
    this.thread.postMessage({ t: 'chunk', ...handed } satisfies ToEngineThread, transferredWith(handed));
  }

  private post(m: ToEngineThread): void {
    if (this.closed) throw this.failure;
    this.thread.postMessage(m);
  }

  private wake(): void {
    for (const w of this.waiting.splice(0)) w();
  }

  private fail(e: unknown): void {
    this.failure ??= e;
    this.asked.failAll(this.failure);
    // A checkpoint waiting for its mark stops waiting (the first bucket's checkpoint waits for it).
    this.marked?.reject(this.failure);
    this.marked = null;
    this.wake();
  }

  private async until(condition: () => boolean): Promise<void> {
    while (!this.failure && !condition()) await new Promise<void>((r) => this.waiting.push(r));
    if (this.failure) throw this.failure;
  }
}
