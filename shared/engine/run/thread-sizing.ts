// What an engine thread runs and how much memory it may take (engine-threads.ts).
import path from 'node:path';
import { appRoot } from '../../app-root';
import type { ThreadLimits } from './thread-pool';

/** Tests run the TypeScript sources; the thread then runs the build (`npm test` builds first). */
export const threadFile = () =>
  __filename.endsWith('.ts')
    ? path.join(appRoot, 'dist', 'shared', 'engine', 'run', 'engine-thread.js')
    : path.join(__dirname, 'engine-thread.js');

/**
 * The thread's old-generation heap, bounded so the engine's memory stays predictable whatever the
 * snapshot's size: its live data is about one bucket (profiles take ~16× their CSV bytes), the
 * rest would be garbage V8 lets pile up when nothing caps it.
 */
const threadHeapMb = (bucketCsvBytes: number) => Math.max(128, 64 + 16 * Math.ceil(bucketCsvBytes / 2 ** 20));

/**
 * Young generation, for short-lived row objects. A first run's threads, and a change run's helper,
 * 16 MB: objects are written as bytes, so few rows outlive a scavenge; against 32 MB, in
 * interleaved pairs at 10 M profiles (random shape, two cores) a first run peaked at 281–294 MB
 * instead of 295–300 in the same time, and at 1 M first runs on one and two cores ran as fast or
 * faster. The reading thread of a run with sync state (a change run) 32 MB: at 10 M a 1 % change
 * took 26.6–28.9 s with it at 16 MB against 21.2–23.8 s at 32 (241 against 256 MB, well within the
 * ceiling). Figures: docs/performance.md.
 */
const YOUNG_GENERATION_MB = { firstRun: 16, withState: 32 } as const;

/** `diffsState`: the thread prepares buckets against sync state (a change run's reading thread). */
export const threadLimits = (bucketCsvBytes: number, diffsState: boolean): ThreadLimits => ({
  maxOldGenerationSizeMb: threadHeapMb(bucketCsvBytes),
  maxYoungGenerationSizeMb: YOUNG_GENERATION_MB[diffsState ? 'withState' : 'firstRun'],
});
