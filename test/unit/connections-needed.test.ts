// How many connections to Braze the transport may open (shared/braze/connections-needed.ts): 2.5
// times the pace times the usual round trip (the lower median of the last two seconds with answers),
// and 8 spare; 32 until a first answer.
import { describe, expect, it } from 'vitest';
import { ConnectionsNeeded } from '../../shared/braze/connections-needed';

function needed(requestsPerSecond: number) {
  let now = 0;
  const n = new ConnectionsNeeded(requestsPerSecond, () => now);
  const answered = (ms: number, times = 1) => {
    for (let i = 0; i < times; i++) n.roundTrip(ms);
  };
  return { n, answered, at: (ms: number) => (now = ms) };
}

describe('the connections a pace needs', () => {
  it('is 32 before the first answer, whatever the pace: the round trip is not known yet', () => {
    expect(needed(1000).n.count).toBe(32);
    expect(needed(10).n.count).toBe(32);
  });

  it('is 2.5 times the pace times the median round trip, and 8 spare, from the first answers on', () => {
    const { n, answered } = needed(1000);
    answered(5);
    expect(n.count).toBe(21); // 2.5 × 1,000 a second × 5 ms, rounded up, + 8
    answered(40);
    answered(10);
    expect(n.count).toBe(33); // the median of 5, 10 and 40 ms
  });

  it('follows the network: answers in 200 ms at 1,000 a second need 508', () => {
    const { n, answered, at } = needed(1000);
    answered(200, 900);
    at(1000);
    expect(n.count).toBe(508);
  });

  it('is not raised by a pause that made a third of the answers of a second late, nor by a whole second of them', () => {
    const { n, answered, at } = needed(1000);
    answered(10, 600);
    answered(300, 300); // answered at once after a 300 ms pause of the main thread
    at(1200);
    expect(n.count).toBe(33);
    answered(300, 400); // a pause across the whole second
    at(2100);
    expect(n.count).toBe(33); // the lower of the two seconds' medians
    answered(12, 500);
    at(3000);
    expect(n.count).toBe(38); // 12 ms now, 300 the second before
  });

  it('follows a network that got slower within two seconds', () => {
    const { n, answered, at } = needed(1000);
    answered(10, 900);
    at(1000);
    answered(100, 900);
    at(2000);
    expect(n.count).toBe(33);
    answered(100, 900);
    at(3000);
    expect(n.count).toBe(258);
  });

  it('takes the first answers as they come, in whatever second they come', () => {
    const { n, answered, at } = needed(1000);
    at(1500);
    expect(n.count).toBe(32);
    answered(20, 3);
    answered(60, 2);
    expect(n.count).toBe(58); // the median of 20, 20, 20, 60, 60
  });

  it('keeps what it knew through a quiet spell', () => {
    const { n, answered, at } = needed(1000);
    answered(30, 10);
    at(5500);
    expect(n.count).toBe(83);
  });

  it('refuses a pace of nothing', () => {
    expect(() => new ConnectionsNeeded(0)).toThrow(/above 0/);
  });
});
