// What one POST /users/track carries and what becomes of each object in it: the terms the engine
// batches by and the client (client.ts) sends by. Apart from the client, so the engine's worker
// thread, which batches objects, loads none of the HTTP client (dependency rule engine-thread-lean).

export const MAX_OBJECTS_PER_REQUEST = 75;

/** One attributes object, already serialized as UTF-8 bytes: the engine builds each profile's
 * JSON once and fingerprints those same bytes, so the object is never built or serialized twice. */
export type BrazeObjectJson = Uint8Array;

export type Outcome = { status: 'sent' } | { status: 'rejected' | 'failed'; reason: string };
