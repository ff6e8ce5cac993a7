// The demo's last act (scripts/demo.ts): Braze proof. The Braze segment the customer would create
// (the membership attribute includes any of the export's segments) is made on the sandbox; a
// verification finds no drift; two users are changed behind the app's back in the sandbox (an
// attribute edited, a user deleted); the next verification finds exactly them; a repair re-sends
// them, and a last verification finds nothing again.
import type { BrazeSandbox } from './braze-sandbox';

type Api = (method: string, path: string, body?: unknown) => Promise<any>;
type RunEnded = (api: Api, runId: string) => Promise<any>;

const PROOF_SEGMENT = 'ci-proof-segment';

async function verify(api: Api, runEnded: RunEnded, exportId: string): Promise<any> {
  const run = await runEnded(api, (await api('POST', `exports/${exportId}/verify`)).runId);
  const c = run.verify?.counts;
  console.log(`  ${run.status}: ${run.verify?.summary ?? run.errors.at(-1)}`);
  if (c) console.log(`  in the state ${c.inState}, in Braze ${c.inBraze}, matched ${c.matched}`);
  return run;
}

/** Returns whether every step came out as it should. */
export async function proveAndRepair(
  api: Api,
  runEnded: RunEnded,
  sandbox: BrazeSandbox,
  hostUrl: string,
  exp: any,
): Promise<boolean> {
  const attribute = exp.membership.attribute ?? exp.brazeSegmentApiId;
  sandbox.exports.define({
    id: PROOF_SEGMENT,
    filters: exp.segments.map((s: string) => ({ attribute, includes: s })),
  });
  await api('PATCH', `exports/${exp.id}`, { proofSegmentId: PROOF_SEGMENT });
  console.log(
    `\nBraze proof: segment "${PROOF_SEGMENT}" = custom attribute ${attribute} includes any of ${exp.segments.join(', ')}`,
  );
  const clean = await verify(api, runEnded, exp.id);

  const [edited, deleted] = sandbox.profileList().filter((p) => p.identifier.external_id);
  const editedId = edited!.identifier.external_id!;
  sandbox.exports.edit(`external_id:${editedId}`, { first_name: 'Changed in the dashboard' });
  sandbox.deleteUser(`external_id:${deleted!.identifier.external_id}`);
  console.log(`\nBehind the app's back: first_name of ${editedId} edited, ${deleted!.identifier.external_id} deleted in Braze`);
  const drifted = await verify(api, runEnded, exp.id);
  if (drifted.verify?.driftReport) {
    const csv = await (await fetch(`${hostUrl}${drifted.verify.driftReport}`)).text();
    for (const line of csv.trim().split('\n')) console.log(`    ${line}`);
  }

  const repair = await api('POST', `runs/${drifted.id}/repair`, {});
  const repaired = await runEnded(api, repair.runId);
  console.log(
    `\nRepair: ${repaired.status}, re-sent ${repaired.counts.sent} profiles in ${repaired.requests.sent} Braze request(s)`,
  );
  const after = await verify(api, runEnded, exp.id);
  const none = (run: any) => run.verify?.counts && run.verify.counts.missing + run.verify.counts.stale === 0;
  return none(clean) && drifted.verify?.counts?.missing === 1 && drifted.verify?.counts?.stale === 1 && none(after);
}
