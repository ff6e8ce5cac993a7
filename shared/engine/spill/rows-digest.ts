// A profile's rows, as the partition step spilled them, in 64 bits: kept in the sync state beside
// the object's fingerprint, so a change run can tell a profile whose rows did not change without
// decoding, merging and writing its object again (the spill line is the row already mapped and
// typed: the same lines make the same object, as long as the export's settings are the same).
// Order-independent (each line hashed, the hashes added), as a profile's rows may come in another
// order next time. Equal digests are trusted only where the object would be equal too; any other
// case takes the full path, which is always right.
import { encode64, mix } from '../diff/object-fingerprint';

/** The digest of the lines starting at `starts` in `text` (each ends at the next newline). */
export function rowsDigest(text: string, starts: number | number[]): string {
  let a = 0;
  let b = 0;
  const add = (start: number) => {
    let x = 0x811c9dc5 | 0;
    let y = 0x2545f491 | 0;
    let i = start;
    for (let c = text.charCodeAt(i); c !== 10 && i < text.length; c = text.charCodeAt(++i)) {
      x = Math.imul(x ^ c, 0x01000193);
      y = Math.imul(y ^ c, 0x5bd1e995);
      y ^= y >>> 15;
    }
    a = (a + mix(x ^ (i - start))) | 0;
    b = (b + mix(y)) | 0;
  };
  if (typeof starts === 'number') add(starts);
  else for (const s of starts) add(s);
  return encode64(mix(a), mix(b));
}

/** A single spill line's digest (a row sent while reading, never spilled). */
export const lineDigest = (line: string) => rowsDigest(`${line}\n`, 0);
