// The main thread's side of the partition step: downloads each CSV partition and hands the bytes
// to the partition thread (partition-step.ts), a few chunks ahead; sends what the thread hands
// back while reading. Keeping the thread's input bounded keeps memory flat, and pausing when
// Braze is the bottleneck keeps the send queue short.
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { ContainerClient } from '@azure/storage-blob';
import { appRoot } from '../app-root';
import type { SegmentTable } from '../snapshot/locate';
import type { EarlySender } from './early-send';
import { PartitionAborted, type FromPartitionThread, type PartitionInit, type PartitionSummary } from './partition-step';

/** Chunks handed to the thread and not yet parsed. */
const CHUNKS_AHEAD = 4;

export interface PartitionRun {
  init: PartitionInit;
  /** In reading order. */
  tables: SegmentTable[];
  container: ContainerClient;
  early: EarlySender | null;
  shouldYield?: () => boolean;
  onProgress: (rowsRead: number, segmentRows: Record<string, number>) => void;
}

/** Tests run the TypeScript sources; the thread then runs the build (`npm test` builds first). */
const threadFile = () =>
  __filename.endsWith('.ts') ? path.join(appRoot, 'dist', 'shared', 'export', 'partition-thread.js') : path.join(__dirname, 'partition-thread.js');

export async function runPartitionStep(run: PartitionRun): Promise<PartitionSummary> {
  const thread = new Worker(threadFile());
  let failure: unknown = null;
  let chunksAhead = 0;
  let partitionDone = false;
  let summary: PartitionSummary | null = null;
  const waiting: (() => void)[] = [];
  const wake = () => {
    for (const w of waiting.splice(0)) w();
  };
  const fail = (e: unknown) => {
    failure ??= e;
    wake();
  };
  const until = async (condition: () => boolean) => {
    while (!failure && !condition()) await new Promise<void>((r) => waiting.push(r));
    if (failure) throw failure;
  };
  thread.on('message', (m: FromPartitionThread) => {
    try {
      if (m.t === 'send') run.early!.send(m);
      else if (m.t === 'chunkDone') chunksAhead--;
      else if (m.t === 'progress') run.onProgress(m.rowsRead, m.segmentRows);
      else if (m.t === 'partitionDone') partitionDone = true;
      else if (m.t === 'finished') summary = m.summary;
      else if (m.t === 'error') fail(m.aborted ? new PartitionAborted(m.message) : new Error(`reading the snapshot failed: ${m.message}`));
    } catch (e) {
      fail(e);
    }
    wake();
  });
  thread.on('error', fail);
  thread.on('exit', (code) => {
    if (!summary) fail(new Error(`the partition thread stopped (exit code ${code})`));
  });
  try {
    thread.postMessage({ t: 'init', init: run.init });
    let stopped = false;
    for (const table of run.tables) {
      const sending = run.early !== null && table.segment === run.init.early?.segment;
      for (const partition of table.partitions) {
        partitionDone = false;
        thread.postMessage({ t: 'partition', spec: { segment: table.segment, columns: table.columns, blobName: partition.blobName, delimiter: partition.delimiter, hasHeader: partition.hasHeader } });
        const download = await run.container.getBlobClient(partition.blobName).download();
        for await (const chunk of download.readableStreamBody as Readable) {
          await until(() => chunksAhead < CHUNKS_AHEAD);
          if (sending) {
            if (!stopped && run.shouldYield?.()) {
              stopped = true;
              thread.postMessage({ t: 'stopSending' }); // what is left waits for the continuation
            }
            const room = run.early!.room();
            if (room) await room;
          }
          // A copy the thread can own: the download's buffers may share memory with others.
          const bytes = new Uint8Array((chunk as Buffer).byteLength);
          bytes.set(chunk as Buffer);
          chunksAhead++;
          thread.postMessage({ t: 'chunk', bytes }, [bytes.buffer]);
        }
        thread.postMessage({ t: 'end' });
        await until(() => partitionDone);
      }
    }
    thread.postMessage({ t: 'finish' });
    await until(() => summary !== null);
    return summary!;
  } finally {
    thread.removeAllListeners('exit');
    await thread.terminate();
  }
}
