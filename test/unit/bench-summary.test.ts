// A batch's summary (bench --repeat N) reads the runs as the performance targets do.
import { describe, expect, it } from 'vitest';
import { spread, summarize, type BenchLine } from '../../scripts/bench-summary';

const line = (run: string, wallSeconds: number, ratioToFloor: number | null, cpuSecondsPerMillion: number): BenchLine => ({
  run,
  wallSeconds,
  ratioToFloor,
  cpuSecondsPerMillion,
  peakRssMB: 200 + wallSeconds,
  loopMs: 31,
  requests: ratioToFloor === null ? 0 : 13334,
});

describe('bench batch summary', () => {
  it('takes the median of an even count as the mean of the middle two, and of an odd count the middle one', () => {
    expect(spread([16.8, 16.3, 16.6, 17.0])).toEqual({ min: 16.3, median: 16.7, max: 17.0 });
    expect(spread([3, 1, 2])).toEqual({ min: 1, median: 2, max: 3 });
    expect(() => spread([])).toThrow(/no values/);
  });

  it('summarises each kind of run apart, counting the runs within 1.25×, 1.10× and 13 CPU-s per million', () => {
    const lines = [
      line('first', 16.5, 1.237, 9.1),
      line('unchanged', 0.08, null, 0.05),
      line('first', 16.9, 1.267, 13.4),
      line('unchanged', 0.07, null, 0.05),
      line('first', 14.6, 1.095, 8.8),
    ];
    const [first, unchanged] = summarize(lines);
    expect(first).toMatchObject({
      summary: 'first',
      runs: 3,
      wallSeconds: { min: 14.6, median: 16.5, max: 16.9 },
      ratioToFloor: { min: 1.095, median: 1.237, max: 1.267 },
      within1_25: 2,
      within1_10: 1,
      cpuWithin13: 2,
    });
    // A run with nothing to send has no floor: no ratios, and none counted within them.
    expect(unchanged).toMatchObject({ summary: 'unchanged', runs: 2, wallSeconds: { median: 0.075 }, requests: { max: 0 } });
    expect(unchanged).not.toHaveProperty('ratioToFloor');
    expect(unchanged).not.toHaveProperty('within1_25');
  });
});
