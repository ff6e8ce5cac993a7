// How long a run's sending takes on a connection: its budget, Braze's reported limit when lower,
// and the hourly cap with the waits for the next clock hour it forces.
import { describe, expect, it } from 'vitest';
import { durationText, estimateDuration } from '../../shared/preview/duration-estimate';

/** 10 M profiles at 75 objects per request. */
const TEN_MILLION = Math.ceil(10_000_000 / 75);

describe('estimated duration', () => {
  it('sends at the request budget when nothing else binds', () => {
    const e = estimateDuration({ requests: 13_334, requestBudget: 1000 });
    expect(e.requestsPerSecond).toBeCloseTo(333.3, 1);
    expect(e.sendingSeconds).toBeCloseTo(40, 0);
    expect(e.limitedBy).toBe('requestBudget');
    expect(e.hourlyCapWaits).toBe(0);
    expect(e.text).toBe('about 40 s');
  });

  it("uses Braze's reported limit when it is below the budget", () => {
    const e = estimateDuration({ requests: 3000, requestBudget: 3000, reportedLimit: 300 });
    expect(e.requestsPerSecond).toBe(100);
    expect(e.sendingSeconds).toBe(30);
    expect(e.limitedBy).toBe('brazeReportedLimit');
    // A reported limit above the budget changes nothing.
    expect(estimateDuration({ requests: 3000, requestBudget: 300, reportedLimit: 3000 }).limitedBy).toBe('requestBudget');
  });

  it('a 10 M-profile run at a 50,000-an-hour cap takes hours and says so', () => {
    expect(TEN_MILLION).toBe(133_334);
    const e = estimateDuration({ requests: TEN_MILLION, requestBudget: 1000, hourlyCap: 50_000, secondsIntoHour: 0 });
    // 50,000 now, 50,000 after the next hour, the last 33,334 after the one after: 2 h and 100 s.
    expect(e.sendingSeconds).toBe(2 * 3600 + 100);
    expect(e.hourlyCapWaits).toBe(2);
    expect(e.limitedBy).toBe('hourlyCap');
    expect(e.text).toBe('about 2 h 2 min (hourly cap 50,000 reached twice)');
  });

  it('counts what this hour has used already, and when the hour ends', () => {
    // 40 min into the hour with 45,000 used: 5,000 now, then the hour turns after 20 min.
    const e = estimateDuration({
      requests: 50_000,
      requestBudget: 1000,
      hourlyCap: 50_000,
      usedThisHour: 45_000,
      secondsIntoHour: 40 * 60,
    });
    expect(e.hourlyCapWaits).toBe(1);
    expect(e.sendingSeconds).toBe(20 * 60 + 135);
    expect(e.text).toBe('about 22 min (hourly cap 50,000 reached once)');
  });

  it('a run that fits what is left of the hour does not wait', () => {
    const e = estimateDuration({ requests: 4000, requestBudget: 1000, hourlyCap: 50_000, usedThisHour: 46_000 });
    expect(e.hourlyCapWaits).toBe(0);
    expect(e.sendingSeconds).toBe(12);
  });

  it('a cap above what the budget can send in an hour never binds', () => {
    const e = estimateDuration({ requests: 2_000_000, requestBudget: 1000, hourlyCap: 5_000_000, secondsIntoHour: 0 });
    expect(e.hourlyCapWaits).toBe(0);
    expect(e.sendingSeconds).toBe(6000);
    expect(e.limitedBy).toBe('requestBudget');
  });

  it('a small cap on a big run waits many hours', () => {
    const e = estimateDuration({ requests: 100, requestBudget: 3000, hourlyCap: 5, secondsIntoHour: 0 });
    expect(e.hourlyCapWaits).toBe(19);
    expect(e.text).toMatch(/^about 19 h .*\(hourly cap 5 reached 19 times\)$/);
  });

  it('reading and diffing overlap sending: the longer of the two is the duration', () => {
    const e = estimateDuration({ requests: 30, requestBudget: 3000, readingAndDiffSeconds: 12 });
    expect(e.seconds).toBe(12);
    expect(e.sendingSeconds).toBe(0);
    expect(estimateDuration({ requests: 5, requestBudget: 1000 }).text).toBe('under a second');
  });

  it('words durations for a person', () => {
    expect(durationText(0.2)).toBe('under a second');
    expect(durationText(42)).toBe('42 s');
    expect(durationText(12 * 60)).toBe('12 min');
    expect(durationText(2 * 3600 + 40 * 60)).toBe('2 h 40 min');
    expect(durationText(3 * 3600)).toBe('3 h');
    expect(durationText(76 * 3600)).toBe('3 days 4 h');
  });
});
