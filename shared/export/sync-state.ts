// What Braze was last successfully sent, per profile, per export: compact fingerprints in Blob
// Storage, one blob per hash bucket of profile keys (not a table row per profile). A bucket's blob
// is rewritten only after its sends finish, so it always describes what Braze really has.
import { createHash } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';

export interface StateEntry {
  /** How Braze knows the profile (`e:<external_id>` / `a:<alias_name>`), to address it when it leaves. */
  identity: string;
  /** Fingerprint of the last attributes object Braze accepted. */
  fp: string;
}

export interface BucketState {
  /** Fingerprint of the export settings the entries were computed under. */
  definition: string;
  entries: Map<string, StateEntry>;
}

export interface Manifest {
  version: 1;
  bucketCount: number;
}

export const fingerprint = (value: unknown) => createHash('sha1').update(JSON.stringify(value)).digest('base64').slice(0, 16);

/** FNV-1a: a fast, stable hash to spread profile keys over buckets. */
export function bucketOf(key: string, bucketCount: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % bucketCount;
}

/** A bucket per ~4 MB of CSV keeps each bucket's merge small, whatever the snapshot's size. */
export function chooseBucketCount(snapshotBytes: number, targetBytes = 4 * 1024 * 1024): number {
  let n = 1;
  while (n < 4096 && n * targetBytes < snapshotBytes) n *= 2;
  return n;
}

export class SyncStateStore {
  constructor(
    private readonly container: ContainerClient,
    private readonly exportId: string,
  ) {}

  private blob(name: string) {
    return this.container.getBlockBlobClient(`${this.exportId}/${name}`);
  }

  async readManifest(): Promise<Manifest | null> {
    try {
      return JSON.parse((await this.blob('manifest.json').downloadToBuffer()).toString('utf8')) as Manifest;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return null;
      throw e;
    }
  }

  async writeManifest(manifest: Manifest): Promise<void> {
    const text = JSON.stringify(manifest);
    await this.blob('manifest.json').upload(text, Buffer.byteLength(text), { blobHTTPHeaders: { blobContentType: 'application/json' } });
  }

  async readBucket(bucket: number): Promise<BucketState> {
    let text: string;
    try {
      text = (await this.blob(`b${bucket}.jsonl`).downloadToBuffer()).toString('utf8');
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return { definition: '', entries: new Map() };
      throw e;
    }
    const lines = text.split('\n');
    const header = JSON.parse(lines[0]!) as { definition: string };
    const entries = new Map<string, StateEntry>();
    for (let i = 1; i < lines.length; i++) {
      if (!lines[i]) continue;
      const [key, identity, fp] = JSON.parse(lines[i]!) as [string, string, string];
      entries.set(key, { identity, fp });
    }
    return { definition: header.definition, entries };
  }

  async writeBucket(bucket: number, state: BucketState): Promise<void> {
    const parts = [JSON.stringify({ definition: state.definition })];
    for (const [key, e] of state.entries) parts.push(JSON.stringify([key, e.identity, e.fp]));
    const body = Buffer.from(parts.join('\n') + '\n');
    await this.blob(`b${bucket}.jsonl`).upload(body, body.length);
  }

  /** Forgets everything (the export was deleted). */
  async clear(): Promise<void> {
    for await (const b of this.container.listBlobsFlat({ prefix: `${this.exportId}/` })) {
      await this.container.deleteBlob(b.name).catch(() => undefined);
    }
  }
}
