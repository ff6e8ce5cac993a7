// The machine's speed at a moment: a fixed loop of integer arithmetic, timed. About 36 ms on this
// 2-core machine when it is quiet; the benchmark and `npm test` print it beside their times.
export function timeFixedLoop(): number {
  const started = process.hrtime.bigint();
  let h = 0x811c9dc5;
  for (let i = 0; i < 30_000_000; i++) h = Math.imul(h ^ (i & 0xff), 0x01000193);
  if (h === 42) process.stderr.write(''); // keeps the loop from being optimised away
  return Number(process.hrtime.bigint() - started) / 1e6;
}
