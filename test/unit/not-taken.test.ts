// What a run says about profiles Braze did not take (shared/runs/not-taken.ts).
import { describe, expect, it } from 'vitest';
import { notTakenMessage } from '../../shared/runs/not-taken';

describe("a run's message about what Braze did not take", () => {
  it('names how many and why, with every reason the client kept', () => {
    expect(
      notTakenMessage({ profiles: 12000, removals: 3 }, [
        'Braze unavailable after 6 attempts (HTTP 503)',
        'Braze answered "queued"',
      ]),
    ).toBe(
      'Braze did not take 12,000 profiles and 3 removals (Braze unavailable after 6 attempts (HTTP 503); Braze answered "queued"): they count as failed; the next run sends them again',
    );
  });

  it('without a reason from Braze, says they were not delivered, in the singular for one', () => {
    expect(notTakenMessage({ profiles: 1, removals: 0 }, [])).toBe(
      '1 profile was not delivered and counts as failed; the next run sends it again',
    );
    expect(notTakenMessage({ profiles: 0, removals: 2 }, undefined)).toBe(
      '2 removals were not delivered and count as failed; the next run sends them again',
    );
  });

  it('beside a cause the run names itself (the hourly cap, the rate limit taken), adds only the reasons Braze gave', () => {
    expect(notTakenMessage({ profiles: 80, removals: 0 }, [], true)).toBeNull();
    expect(notTakenMessage({ profiles: 80, removals: 0 }, ['Braze unavailable after 6 attempts (timed out)'], true)).toBe(
      'Braze also did not take some of them (Braze unavailable after 6 attempts (timed out)); the next run sends them again',
    );
  });

  it('says nothing when nothing failed', () => {
    expect(notTakenMessage({ profiles: 0, removals: 0 }, ['a reason from a send that was taken later'])).toBeNull();
  });
});
