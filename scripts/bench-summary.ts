// The summary of a batch (bench --repeat N): for each kind of run, the spread of its figures over
// the batch as the performance targets read them: the median of the runs, and how many were within
// 1.25× and 1.10× of the floor and 13 CPU-seconds per million profiles.

/** The figures of one run's line that a batch is summarised by. */
export interface BenchLine {
  run: string;
  wallSeconds: number;
  ratioToFloor: number | null;
  cpuSecondsPerMillion: number;
  peakRssMB: number;
  loopMs: number;
  requests: number;
}

export interface Spread {
  min: number;
  median: number;
  max: number;
}

/** Smallest, median (the mean of the middle two of an even count) and largest. */
export function spread(values: number[]): Spread {
  if (values.length === 0) throw new Error('no values to summarise');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { min: sorted[0]!, median: Number(median.toFixed(3)), max: sorted[sorted.length - 1]! };
}

/** One summary per kind of run, in the order the kinds first came. */
export function summarize(lines: BenchLine[]): Record<string, unknown>[] {
  const byRun = new Map<string, BenchLine[]>();
  for (const line of lines) byRun.set(line.run, [...(byRun.get(line.run) ?? []), line]);
  return [...byRun].map(([run, runs]) => {
    const ratios = runs.map((r) => r.ratioToFloor).filter((r): r is number => r !== null);
    const within = (limit: number, values: number[]) => values.filter((v) => v <= limit).length;
    const cpu = runs.map((r) => r.cpuSecondsPerMillion);
    return {
      summary: run,
      runs: runs.length,
      wallSeconds: spread(runs.map((r) => r.wallSeconds)),
      ...(ratios.length
        ? { ratioToFloor: spread(ratios), within1_25: within(1.25, ratios), within1_10: within(1.1, ratios) }
        : {}),
      cpuSecondsPerMillion: spread(cpu),
      cpuWithin13: within(13, cpu),
      peakRssMB: spread(runs.map((r) => r.peakRssMB)),
      loopMs: spread(runs.map((r) => r.loopMs)),
      requests: spread(runs.map((r) => r.requests)),
    };
  });
}
