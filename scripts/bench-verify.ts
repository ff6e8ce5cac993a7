// `npm run bench -- --profiles N --verify [--sample K]`: after the first run, a verification of the
// export in a process of its own (scripts/bench-run.ts --verify), against the sandbox that keeps the
// profiles and makes the export at once. Prints one JSON line: its drift counts (0 expected), the
// seconds spent downloading and comparing (Braze's own export time apart), wall time and the process's
// peak RSS. With --sample K, a sample of K profiles read through /users/export/ids at that endpoint's
// limits: its wall time and confidence statement. With --unexportable the export also maps image_url,
// which Braze cannot export: every profile is then settled from the snapshot the export sent.

type RunInChild = (env: Record<string, string>, exportId: string, killWhen?: undefined, extraArgs?: string[]) => Promise<unknown>;

export async function benchVerify(
  sandboxUrl: string,
  exportId: string,
  segments: number,
  runInChild: RunInChild,
  env: Record<string, string> = {},
): Promise<void> {
  const post = (path: string, body: unknown) => fetch(`${sandboxUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
  const filters = Array.from({ length: segments }, (_, s) => ({ attribute: 'bench-segments', includes: `Segment${s}` }));
  await post('/sandbox/segments', { id: 'bench-proof', filters });
  await post('/sandbox/exports', { readyAfterMs: 0 });
  const { services } = await import('../shared/services');
  await services().exports.update({ role: 'Admin', name: 'bench' }, exportId, { proofSegmentId: 'bench-proof' }, null);
  const sample = process.argv.includes('--sample') ? ['--sample', process.argv[process.argv.indexOf('--sample') + 1]!] : [];
  const out = (await runInChild(env, exportId, undefined, ['--verify', ...sample])) as {
    verify: { counts: unknown; timings?: { downloadSeconds: number; compareSeconds: number } };
  };
  const t = out.verify.timings;
  const downloadAndCompareSeconds = t ? t.downloadSeconds + t.compareSeconds : undefined;
  const run = `${sample.length ? 'verify-sample' : 'verify'}${process.argv.includes('--unexportable') ? '-unexportable' : ''}`;
  console.log(JSON.stringify({ run, downloadAndCompareSeconds, ...out }));
}
