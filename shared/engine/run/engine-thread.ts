// Entry point of the engine's worker thread: the partition step (read/partition-step.ts), then the
// bucket step (diff/bucket-step.ts) bucket by bucket. Messages in, messages out.
import { parentPort } from 'node:worker_threads';
import { BucketStep } from '../diff/bucket-step';
import { PartitionStep } from '../read/partition-step';
import { transferredBy, type FromEngineThread, type PartitionInit, type ToEngineThread } from '../thread/protocol';
import { RingReader, RingWriter } from '../thread/shared-ring';

const port = parentPort!;
const post = (m: FromEngineThread) => port.postMessage(m, transferredBy(m));
let step: PartitionStep | null = null;
let init: PartitionInit | null = null;
let buckets: BucketStep | null = null;
let objectRing: RingWriter | null = null;
let stateRing: RingWriter | null = null;
// Messages are handled one at a time, in order: `end` waits for the partition's last rows.
let queue: Promise<void> = Promise.resolve();
/** Messages received and not yet handled (idle work goes through the same queue and counts too). */
let pending = 0;
let idleWorkScheduled = false;
let idleWorkFailed = false;

/** Runs `work` in turn after what is queued; once nothing is left, idle work may go on. */
function enqueue(work: () => Promise<void>): void {
  pending++;
  queue = queue.then(work).finally(() => {
    pending--;
    scheduleIdleWork();
  });
}

/**
 * Rows of other segments left for later (read/deferred-rows.ts) are mapped and spilled a piece at a
 * time while no message waits and Braze is behind, that is while the thread would otherwise idle.
 */
function scheduleIdleWork(): void {
  if (pending > 0 || idleWorkScheduled || idleWorkFailed || !step?.hasDeferredWork) return;
  idleWorkScheduled = true;
  setImmediate(() => {
    idleWorkScheduled = false;
    if (pending > 0 || !step?.hasDeferredWork) return; // messages first; this comes back after them
    const s = step;
    enqueue(async () => {
      await s.workDeferred().catch((e: unknown) => {
        idleWorkFailed = true; // the run stops: the main thread ends it
        s.fail(e);
      });
    });
  });
}

port.on('message', (m: ToEngineThread) => {
  enqueue(async () => {
    try {
      switch (m.t) {
        case 'init':
          init = m.init;
          objectRing = new RingWriter(m.rings.objects);
          stateRing = new RingWriter(m.rings.state);
          step = new PartitionStep(m.init, { chunks: new RingReader(m.rings.chunks), objects: objectRing }, post);
          return;
        case 'partition':
          step!.startPartition(m.spec);
          if (m.grant) await step!.download(m.grant, m.next ?? null);
          return;
        case 'chunk':
          return step!.chunk(m);
        case 'end':
          return await step!.endPartition();
        case 'stopSending':
          return step!.stopSending();
        case 'earlyMark':
          return step!.earlyMark();
        case 'brazeBehind':
          return step!.brazeBehind();
        case 'takeIn':
          return post({ t: 'tookIn', ...(await step!.takeIn()) });
        case 'finish':
          return await step!.finish();
        case 'reset':
          step?.close();
          step = null;
          init = null;
          buckets = null;
          objectRing = null;
          stateRing = null;
          idleWorkFailed = false;
          return;
        case 'prepare': {
          const { def, definitionFp, fullSync, tempDir, runId, tableColumns } = init!;
          const earlySegment = init!.early ? def.segments.indexOf(init!.early.segment) : -1;
          buckets ??= new BucketStep(
            { def, definitionFp, fullSync, tempDir, earlySegment, runId, tableColumns },
            { objects: objectRing!, state: stateRing! },
            (b) => step!.earlyOmittedIn(b),
          );
          post({
            t: 'prepared',
            prepared: await buckets.prepare(m.bucket, m.stateFile),
          });
          return;
        }
      }
    } catch (e) {
      if (step) step.fail(e);
      else post({ t: 'error', message: (e as Error).message, aborted: false });
    }
  });
});
