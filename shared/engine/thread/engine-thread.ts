// Entry point of the engine's worker thread: the partition step (partition-step.ts), then the
// bucket step (bucket-step.ts) bucket by bucket. Messages in, messages out.
import { parentPort } from 'node:worker_threads';
import { BucketStep } from '../diff/bucket-step';
import { PartitionStep } from '../read/partition-step';
import { transferredBy, type FromEngineThread, type PartitionInit, type ToEngineThread } from './protocol';
import { RingReader, RingWriter } from './shared-ring';

const port = parentPort!;
const post = (m: FromEngineThread) => port.postMessage(m, transferredBy(m));
let step: PartitionStep | null = null;
let init: PartitionInit | null = null;
let buckets: BucketStep | null = null;
let objectRing: RingWriter | null = null;
// Messages are handled one at a time, in order: `end` waits for the partition's last rows.
let queue: Promise<void> = Promise.resolve();

function enqueue(work: () => Promise<void>): void {
  queue = queue.then(work);
}

port.on('message', (m: ToEngineThread) => {
  enqueue(async () => {
    try {
      switch (m.t) {
        case 'init':
          init = m.init;
          objectRing = new RingWriter(m.rings.objects);
          step = new PartitionStep(m.init, { chunks: new RingReader(m.rings.chunks), objects: objectRing }, post);
          return;
        case 'partition':
          return step!.startPartition(m.spec);
        case 'chunk':
          return step!.chunk(m);
        case 'end':
          return await step!.endPartition();
        case 'stopSending':
          return step!.stopSending();
        case 'earlyMark':
          return step!.earlyMark();
        case 'takeIn':
          return post({ t: 'tookIn', ...(await step!.takeIn()) });
        case 'finish':
          return await step!.finish();
        case 'prepare': {
          const { def, definitionFp, fullSync, tempDir, runId } = init!;
          buckets ??= new BucketStep({ def, definitionFp, fullSync, tempDir, runId }, objectRing!, (b) => step!.earlyOmittedIn(b));
          post({ t: 'prepared', prepared: await buckets.prepare(m.bucket, m.stateText) });
          return;
        }
      }
    } catch (e) {
      step ? step.fail(e) : post({ t: 'error', message: (e as Error).message, aborted: false });
    }
  });
});
