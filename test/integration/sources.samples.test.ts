// Source discovery shows up to three sample values per column, read from the start of one partition
// of the newest snapshot and masked as the preview masks its samples: no raw e-mail, phone or ID
// leaves the app this way. On Azurite, with CI-layout exports.
import { afterEach, describe, expect, it } from 'vitest';
import { sourceSegments } from '../../functions/sources';
import { services } from '../../shared/services';
import { DISCOVERY_LIMITS } from '../../shared/snapshot/discover';
import { call, useAzurite } from '../helpers/app';
import { CONTAINER, writeCiExport } from '../helpers/ci-export';
import { createConnection, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
const defaults = { ...DISCOVERY_LIMITS };
afterEach(() => Object.assign(DISCOVERY_LIMITS, defaults));

const COLUMNS = [
  { name: 'CustomerId', dataType: 'string' },
  { name: 'PrimaryEmail', dataType: 'string' },
  { name: 'Telephone', dataType: 'string' },
  { name: 'Score', dataType: 'int64' },
  { name: 'Vip', dataType: 'boolean' },
  { name: 'Note', dataType: 'string' },
];

const NAMES = ['ann', 'bo', 'chloe', 'dmitri'];

/** `count` rows: the first 10 VIPs, the rest not; every third row without a note. */
function people(count: number): string {
  const lines: string[] = [];
  for (let i = 1; i <= count; i++)
    lines.push(
      [
        `cust-${i}`,
        `${NAMES[i % 4]}${i}@example.com`,
        `+47900${String(i).padStart(5, '0')}`,
        1000 + i,
        i <= 10,
        i % 3 ? `"note, ${i}"` : '',
      ].join(','),
    );
  return lines.join('\n') + '\n';
}

const describeFolder = (folder: string, as: 'Admin' | 'Contributor' = 'Admin') =>
  call(sourceSegments, { method: 'GET', path: 'sources/segments', as, query: { container: CONTAINER, folder } });

const columnsOf = (body: any, segment: string) =>
  Object.fromEntries(
    body.segments.find((s: { name: string }) => s.name === segment).columns.map((c: any) => [c.name, c]),
  ) as Record<string, { name: string; dataType?: string; samples: unknown[] }>;

describe('discovery column samples', () => {
  it('gives each column at most three masked samples; no raw value is in the answer', async () => {
    const blobs = services().storage.ciBlobs;
    // An empty first partition: the samples come from the first one with rows.
    const source = await writeCiExport(blobs, [{ segment: 'Gold', columns: COLUMNS, partitions: ['', people(40)] }]);
    const res = await describeFolder(source.folder);
    expect(res.status).toBe(200);
    const text = JSON.stringify(res.body);
    for (const raw of ['bo1@', 'chloe2@', 'dmitri3@', 'cust-1', '4790000001', 'note, 1']) expect(text).not.toContain(raw);
    const columns = columnsOf(res.body, 'Gold');
    for (const c of Object.values(columns)) expect(c.samples.length).toBeLessThanOrEqual(3);
    // Distinct as shown: masked values that look alike are shown once.
    expect(columns.CustomerId).toMatchObject({ dataType: 'string', samples: ['c•••••', 'c••••••'] });
    expect(columns.PrimaryEmail!.samples).toEqual(['b••@example.com', 'c•••••@example.com', 'd••••••@example.com']);
    expect(columns.Telephone!.samples).toEqual([`+${'•'.repeat(10)}`]);
    // Typed as a run types them (int64 → number), then masked as the preview masks numbers.
    expect(columns.Score!.samples).toEqual([9999]);
    // Booleans say little and show as they are; the first 40 rows hold both.
    expect(columns.Vip!.samples).toEqual([true, false]);
    expect(columns.Note!.samples).toEqual(['n••••••', 'n•••••••']);
  });

  it('reads only the start of one partition: rows past the byte bound are never seen', async () => {
    const blobs = services().storage.ciBlobs;
    const source = await writeCiExport(blobs, [{ segment: 'Big', columns: COLUMNS, partitions: [people(5000), people(5000)] }]);
    DISCOVERY_LIMITS.sampleBytes = 400; // about six rows: every one a VIP
    const res = await describeFolder(source.folder);
    expect(res.status).toBe(200);
    const columns = columnsOf(res.body, 'Big');
    expect(columns.Vip!.samples).toEqual([true]);
    expect(columns.PrimaryEmail!.samples).toHaveLength(3);
  });

  it('samples a folder without model.json from the rows below the header', async () => {
    const blobs = services().storage.ciBlobs;
    const header = COLUMNS.map((c) => c.name).join(',');
    const source = await writeCiExport(blobs, [{ segment: 'Plain', partitions: [`${header}\n${people(5)}`] }], {
      withModel: false,
    });
    const res = await describeFolder(source.folder, 'Admin');
    expect(res.body.source).toBe('header rows');
    const columns = columnsOf(res.body, 'Plain');
    expect(columns.PrimaryEmail!.samples).toHaveLength(3);
    expect(JSON.stringify(res.body)).not.toMatch(/[a-z]+\d@/);
    // Untyped without model.json: text, masked as text.
    expect(columns.Vip!.samples).toEqual(['t•••']);
  });

  it('shows samples to Admins and to Contributors with a connection shared, not to other Contributors', async () => {
    const blobs = services().storage.ciBlobs;
    const source = await writeCiExport(blobs, [{ segment: 'Gold', columns: COLUMNS, partitions: [people(5)] }]);
    const sampled = async (as: 'Admin' | 'Contributor') => {
      const res = await describeFolder(source.folder, as);
      expect(res.status).toBe(200);
      const columns = columnsOf(res.body, 'Gold');
      // The columns are listed either way.
      expect(Object.keys(columns)).toEqual(COLUMNS.map((c) => c.name));
      return columns.PrimaryEmail!.samples.length > 0;
    };
    expect(await sampled('Admin')).toBe(true);
    expect(await sampled('Contributor')).toBe(false);
    await createConnection(sandbox().url, { allowContributors: false });
    expect(await sampled('Contributor')).toBe(false);
    await createConnection(sandbox().url, { allowContributors: true });
    expect(await sampled('Contributor')).toBe(true);
  });

  it('splits a folder without model.json as its header is split (`;`), and counts its reads against the sampled segments', async () => {
    const blobs = services().storage.ciBlobs;
    const header = COLUMNS.map((c) => c.name).join(';');
    const body = 'cust-1;ann1@example.com;+4790000001;1001;true;"note; 1"\n';
    const source = await writeCiExport(
      blobs,
      [
        { segment: 'Semi', partitions: [`${header}\n${body}`] },
        { segment: 'Semi2', partitions: [`${header}\n${body}`] },
      ],
      { withModel: false },
    );
    const res = await describeFolder(source.folder);
    expect(res.body.source).toBe('header rows');
    const columns = columnsOf(res.body, 'Semi');
    expect(Object.keys(columns)).toEqual(COLUMNS.map((c) => c.name));
    expect(columns.CustomerId!.samples).toEqual(['c•••••']);
    expect(columns.PrimaryEmail!.samples).toEqual(['a•••@example.com']);
    expect(columns.Note!.samples).toEqual(['n••••••']);
    expect(res.body.truncated).toBe(false);
    // Past the cap on sampled segments, no partition is read: the answer is cut short and says so.
    DISCOVERY_LIMITS.sampledSegments = 1;
    const capped = await describeFolder(source.folder);
    expect(capped.body.segments).toHaveLength(1);
    expect(capped.body.truncated).toBe(true);
  });
});
