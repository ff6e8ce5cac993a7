// A host name's addresses, looked up once for a while and shared by the connections opened
// meanwhile. net and tls look the host up again for every connection (getaddrinfo, on libuv's pool):
// a burst opening connections to one host paid for each on the main thread, and the connections
// waited their turn in the pool (docs/performance.md). A name whose addresses change is followed
// within `ttlMs`; a failed lookup is not kept.
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';

type Found = [address: string | dns.LookupAddress[], family?: number];

/** A `lookup` for net.connect / tls.connect that keeps each answer `ttlMs`. */
export function cachedLookup(ttlMs = 10_000, now: () => number = () => performance.now()): LookupFunction {
  const kept = new Map<string, { at: number; found: Promise<Found> }>();
  return (hostname, options, callback) => {
    const key = `${hostname}|${options.family ?? 0}|${options.all ? 'all' : 'one'}|${options.hints ?? 0}`;
    let entry = kept.get(key);
    if (!entry || now() - entry.at >= ttlMs) {
      const found = new Promise<Found>((resolve, reject) =>
        dns.lookup(hostname, options, (error, address, family) => (error ? reject(error) : resolve([address, family]))),
      );
      const made = { at: now(), found };
      kept.set(key, made);
      entry = made;
      found.catch(() => kept.get(key) === made && kept.delete(key));
    }
    entry.found.then(
      ([address, family]) => callback(null, address, family),
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
}
