// The hourly cap as a run's client draws on it: chunks reserved from a shared count, never past the
// cap whatever the number of runs, given back when an attempt ends; and Braze's rate-limit headers
// read as Braze sends them. The count here is in memory; the Table Storage one has its integration test.
import { describe, expect, it } from 'vitest';
import { HourlyCap, reservationChunk, type HourlyCounter } from '../../shared/braze/hourly-cap';
import { observeRateLimit } from '../../shared/braze/rate-limit-headers';

function memoryCounter() {
  const counts = new Map<number, number>();
  let reservations = 0;
  const counter: HourlyCounter = {
    async reserve(hour, want, cap) {
      reservations++;
      const used = counts.get(hour) ?? 0;
      const got = Math.max(0, Math.min(want, cap - used));
      counts.set(hour, used + got);
      return got;
    },
    async giveBack(hour, n) {
      counts.set(hour, Math.max(0, (counts.get(hour) ?? 0) - n));
    },
  };
  return { counter, counts, reservations: () => reservations };
}

const HOUR = 3_600_000;

describe('hourly cap', () => {
  it('honours a cap lowered while the attempt sends, from the next chunk on (read once a chunk)', async () => {
    const { counter, counts } = memoryCounter();
    let capNow: number | null = 1000;
    let reads = 0;
    const now = 10 * HOUR;
    const cap = new HourlyCap({ ...counter, currentCap: async () => (reads++, capNow) }, 1000, () => now);
    expect(await cap.take()).toBe(true); // a chunk of 50 reserved
    capNow = 60; // the Admin lowers the cap
    let taken = 1;
    while (await cap.take()) taken++;
    expect(taken).toBe(60);
    expect(counts.get(10 * HOUR)).toBe(60);
    expect(cap.cap).toBe(60);
    expect(reads).toBeLessThan(10);
  });

  it('keeps what was sent while a reservation was under way: a bucket is not refused while the cap is free', async () => {
    const { counter, counts } = memoryCounter();
    let release: (() => void) | null = null;
    const slow: HourlyCounter = {
      reserve: async (hour, want, cap) => {
        if (release === null) await new Promise<void>((r) => (release = r));
        return counter.reserve(hour, want, cap);
      },
      giveBack: counter.giveBack,
    };
    const now = 10 * HOUR;
    const cap = new HourlyCap(slow, 15, () => now);
    release = () => undefined; // the first reservation answers at once
    expect(await cap.reserveFor(5)).toBe(true); // bucket 1: 5 in hand, 5 owed
    release = null;
    const second = cap.reserveFor(5); // bucket 2's reservation is slow...
    for (let i = 0; i < 5; i++) expect(await cap.take()).toBe(true); // ...while bucket 1's 5 requests go
    while (!release) await new Promise((r) => setTimeout(r, 1));
    (release as () => void)();
    expect(await second).toBe(true);
    // 10 of 15 used or in hand, bucket 2's 5 owed: bucket 3's 5 fit exactly.
    expect(await cap.reserveFor(5)).toBe(true);
    expect(cap.reached).toBe(false);
    expect(counts.get(10 * HOUR)).toBe(15);
  });

  it('lets exactly the cap through across runs, in chunks, and says when the hour resumes', async () => {
    const { counter, counts, reservations } = memoryCounter();
    let now = 10 * HOUR + 5 * 60_000;
    const runs = [new HourlyCap(counter, 1000, () => now), new HourlyCap(counter, 1000, () => now)];
    let taken = 0;
    for (let i = 0; i < 800; i++) for (const run of runs) if (await run.take()) taken++;
    expect(taken).toBe(1000);
    expect(counts.get(10 * HOUR)).toBe(1000);
    expect(reservations()).toBeLessThan(60); // 50 a chunk, not one round trip per request
    expect(runs.every((r) => r.reached)).toBe(true);
    expect(runs[0]!.resumesAt).toBe(11 * HOUR);
    // A new attempt in the next hour starts afresh.
    now = 11 * HOUR + 1000;
    const next = new HourlyCap(counter, 1000, () => now);
    expect(await next.available()).toBe(true);
    expect(await next.take()).toBe(true);
  });

  it('gives back what an attempt reserved and did not send', async () => {
    const { counter, counts } = memoryCounter();
    const cap = new HourlyCap(counter, 200, () => 3 * HOUR);
    expect(await cap.take()).toBe(true);
    expect(counts.get(3 * HOUR)).toBe(reservationChunk(200));
    await cap.release();
    expect(counts.get(3 * HOUR)).toBe(1);
  });

  it("reserves a bucket's requests before it goes, and refuses a bucket that does not fit the hour", async () => {
    const { counter, counts } = memoryCounter();
    const cap = new HourlyCap(counter, 10, () => 5 * HOUR);
    expect(await cap.reserveFor(4)).toBe(true);
    for (let i = 0; i < 4; i++) expect(await cap.take()).toBe(true);
    expect(await cap.reserveFor(7)).toBe(false); // 6 left this hour
    expect(cap.reached).toBe(true);
    expect(cap.exhausted).toBe(false); // what is in hand may still go
    expect(cap.resumesAt).toBe(6 * HOUR);
    await cap.release();
    expect(counts.get(5 * HOUR)).toBe(4);
    // A bucket bigger than the whole cap goes in a fresh hour, as far as the cap allows.
    expect(await new HourlyCap(counter, 10, () => 6 * HOUR).reserveFor(500)).toBe(true);
  });

  it("covers every bucket under way: a bucket's last objects may go out with the next bucket's", async () => {
    const { counter } = memoryCounter();
    const cap = new HourlyCap(counter, 2, () => 7 * HOUR);
    expect(await cap.reserveFor(1)).toBe(true); // 70 objects: still waiting for a full batch
    // 80 more: 2 requests of their own, and the first bucket's still owed: 3 in all, 2 in the hour.
    expect(await cap.reserveFor(2)).toBe(false);
    expect(cap.reached).toBe(true);
    expect(await cap.take()).toBe(true); // what the first bucket owes still goes
    expect(cap.exhausted).toBe(false);
  });

  it('finds a cap used up by others before sending anything', async () => {
    const { counter, counts } = memoryCounter();
    counts.set(2 * HOUR, 5);
    const cap = new HourlyCap(counter, 5, () => 2 * HOUR + 10);
    expect(await cap.available()).toBe(false);
    expect(cap.resumesAt).toBe(3 * HOUR);
  });
});

describe("Braze's rate-limit headers", () => {
  const answer = (status: number, headers: Record<string, string>) => ({
    status,
    header: (n: string) => Object.entries(headers).find(([k]) => k.toLowerCase() === n.toLowerCase())?.[1] ?? null,
  });

  it('reads Limit, Remaining and Reset (epoch seconds) in any case, and keeps the limit through a 429', () => {
    const at = new Date('2026-12-04T01:00:00Z');
    const seen = observeRateLimit(
      null,
      answer(201, { 'x-ratelimit-limit': '3000', 'X-RATELIMIT-REMAINING': '2990', 'X-RateLimit-Reset': '1796346003' }),
      at,
    );
    expect(seen).toEqual({
      limit: 3000,
      remaining: 2990,
      resetsAt: new Date(1796346003 * 1000).toISOString(),
      observedAt: at.toISOString(),
      lastRateLimited: null,
    });
    const later = new Date('2026-12-04T01:00:05Z');
    const limited = observeRateLimit(seen, answer(429, { 'X-RateLimit-Retry-After': '2' }), later);
    expect(limited).toMatchObject({ limit: 3000, lastRateLimited: { at: later.toISOString(), retryAfterSeconds: 2 } });
    expect(observeRateLimit(limited, answer(503, {}))).toBe(limited);
  });
});
