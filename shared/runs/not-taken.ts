// What a run whose profiles (or removals) Braze did not take says about them, so a person can act
// on it: how many, and why, with the first few distinct reasons the Braze client met (Braze down, a
// request refused as a whole, a certificate a proxy put in Braze's place).
import { thousands } from '../thousands';

/** `n` things, as a person reads them: 1 profile, 12,000 profiles. */
export const counted = (n: number, one: string, many: string) => `${thousands(n)} ${n === 1 ? one : many}`;

/**
 * The run's message about what Braze did not take; null when nothing failed, or when `causeGiven`
 * (the hourly cap, another run taking the rate limit: the run says so itself) and Braze gave no
 * reason of its own.
 */
export function notTakenMessage(
  failed: { profiles: number; removals: number },
  reasons: readonly string[] | undefined,
  causeGiven = false,
): string | null {
  if (failed.profiles + failed.removals === 0) return null;
  const what = [
    failed.profiles ? counted(failed.profiles, 'profile', 'profiles') : '',
    failed.removals ? counted(failed.removals, 'removal', 'removals') : '',
  ]
    .filter(Boolean)
    .join(' and ');
  const one = failed.profiles + failed.removals === 1;
  const sendsAgain = `the next run sends ${one ? 'it' : 'them'} again`;
  if (reasons?.length) {
    const why = reasons.join('; ');
    return causeGiven
      ? `Braze also did not take some of them (${why}); ${sendsAgain}`
      : `Braze did not take ${what} (${why}): ${one ? 'it counts' : 'they count'} as failed; ${sendsAgain}`;
  }
  if (causeGiven) return null;
  return `${what} ${one ? 'was' : 'were'} not delivered and ${one ? 'counts' : 'count'} as failed; ${sendsAgain}`;
}
