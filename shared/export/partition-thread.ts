// Entry point of the partition step's worker thread (partition-step.ts): messages in, messages out.
import { parentPort } from 'node:worker_threads';
import { PartitionStep, type FromPartitionThread, type ToPartitionThread } from './partition-step';

const port = parentPort!;
const post = (m: FromPartitionThread) => port.postMessage(m);
let step: PartitionStep | null = null;
// Messages are handled one at a time, in order: `end` waits for the partition's last rows.
let queue: Promise<void> = Promise.resolve();

port.on('message', (m: ToPartitionThread) => {
  queue = queue.then(async () => {
    try {
      switch (m.t) {
        case 'init':
          step = new PartitionStep(m.init, post);
          return;
        case 'partition':
          return step!.startPartition(m.spec);
        case 'chunk':
          return step!.chunk(m.bytes);
        case 'end':
          return await step!.endPartition();
        case 'stopSending':
          return step!.stopSending();
        case 'finish':
          return step!.finish();
      }
    } catch (e) {
      step ? step.fail(e) : post({ t: 'error', message: (e as Error).message, aborted: false });
    }
  });
});
