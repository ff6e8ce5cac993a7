// A verification's outcome in words: what it found, then what it could not verify or tell, and why.
import type { DriftCounts } from '../verify/drift';
import type { VerifyRecord } from '../verify/record';
import { thousands } from '../thousands';

/** "No drift: …" or what was found, for a person; then what could not be verified or told, and why. */
export function summaryOf(c: DriftCounts, notes: Pick<VerifyRecord, 'sentValues' | 'unverifiableFields'> = {}): string {
  const drift = c.missing + c.extra + c.stale + c.unknown;
  const found =
    drift === 0
      ? `No drift: Braze holds exactly what the export last sent for all ${thousands(c.inState)} profiles, and no one else is in the segment`
      : `Drift found: ${thousands(c.missing)} missing, ${thousands(c.extra)} extra, ${thousands(c.stale)} stale, ${thousands(c.unknown)} unknown (of ${thousands(c.inState)} profiles sent, ${thousands(c.inBraze)} users in the Braze segment); repair re-sends only these`;
  return found + notesOf(notes);
}

/** What a summary adds: the fields left out of the comparison, and drift whose fields or segments could not be named. */
export function notesOf({ sentValues, unverifiableFields }: Pick<VerifyRecord, 'sentValues' | 'unverifiableFields'>): string {
  let text = '';
  const fields = unverifiableFields ?? [];
  if (fields.length)
    text += `. Not verified: ${fields.join(', ')} (Braze cannot export ${fields.length > 1 ? 'them' : 'it'}; map to a custom attribute to verify)`;
  if (sentValues?.untold)
    text += `. For ${thousands(sentValues.untold)} of the stale or missing profiles the fields or segments could not be named: ${sentValues.why}`;
  return text;
}
