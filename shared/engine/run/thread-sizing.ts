// What an engine thread runs and how much memory it may take: the reading thread and its helper
// (engine-threads.ts) alike.
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
 * Young generation: short-lived row objects only, on both threads (one kind in the thread pool).
 * 16 MB: objects are written as bytes, so few rows outlive a scavenge. In interleaved pairs at 10 M
 * profiles (random shape, two cores, first run) the reading thread's at 32 MB peaked at 295–300 MB,
 * at 16 MB 281–294, in the same time and CPU; at 1 M, first runs on one and two cores ran as fast
 * or faster (docs/performance.md).
 */
const YOUNG_GENERATION_MB = 16;

export const threadLimits = (bucketCsvBytes: number): ThreadLimits => ({
  maxOldGenerationSizeMb: threadHeapMb(bucketCsvBytes),
  maxYoungGenerationSizeMb: YOUNG_GENERATION_MB,
});
