// What an engine thread runs and how much memory it may take: the reading thread and its helper
// (engine-threads.ts) differ only in their young generation.
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
 * Young generation: short-lived row objects only. Measured per million profiles on a run that
 * sends early (one engine thread): at 24 MB, rows outlived scavenges and were promoted,
 * costing ~1.2 core-seconds more garbage collection; above 32 MB nothing more is gained, and V8's
 * default (48 MB) would add to the thread's footprint. The helper thread only reads, where a row
 * lives only while its chunk is parsed: 16 MB.
 */
const YOUNG_MB = { reader: 32, helper: 16 } as const;

export const threadLimits = (role: keyof typeof YOUNG_MB, bucketCsvBytes: number): ThreadLimits => ({
  maxOldGenerationSizeMb: threadHeapMb(bucketCsvBytes),
  maxYoungGenerationSizeMb: YOUNG_MB[role],
});
