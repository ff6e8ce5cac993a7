// The bundled sample CI export: three segments, a few hundred profiles, and the awkward rows real
// exports have (quoted commas, doubled quotes, embedded newlines, a BOM, header / no header, bad
// emails and phones, a row with no identifier, a row too wide, a row too short, duplicates). People are
// generated from a fixed seed; `expectedBrazeProfiles` says what Braze must hold afterwards,
// computed from the people themselves, not by the app's own CSV or mapping code.
import type { BlobServiceClient } from '@azure/storage-blob';

export const SAMPLE_CONTAINER = 'dynamics365customerinsights';
export const SAMPLE_FOLDER = 'CustomerInsights_0f2c4c1e-8a55-4b8e-9c3e-5d1f0a7b9e21/BrazeExport';
export const SAMPLE_SEGMENTS = ['HighValueSegment', 'ChurnRisk', 'NewsletterSubscribers'] as const;
const STAMP = '2026/11/20/0615';

export interface Person {
  customerId: string;
  brazeUserId: string;
  email: string;
  phone: string;
  firstName: string;
  lastName: string;
  lifetimeValue: string;
  loyalty: string;
  lastPurchase: string;
  segments: string[];
}

const COLUMNS = [
  { name: 'CustomerId', dataType: 'string' },
  { name: 'BrazeUserId', dataType: 'string' },
  { name: 'PrimaryEmail', dataType: 'string' },
  { name: 'Telephone', dataType: 'string' },
  { name: 'FirstName', dataType: 'string' },
  { name: 'LastName', dataType: 'string' },
  { name: 'LifetimeValue', dataType: 'decimal' },
  { name: 'IsLoyaltyMember', dataType: 'boolean' },
  { name: 'LastPurchase', dataType: 'dateTime' },
];

/** The export definition fields that map the sample's columns (POST /api/exports body, minus ids). */
export const SAMPLE_MATCHING = {
  profileId: 'CustomerId',
  email: 'PrimaryEmail',
  brazeCustomerId: 'BrazeUserId',
  phone: 'Telephone',
  attributes: {
    first_name: 'FirstName',
    last_name: 'LastName',
    lifetime_value: 'LifetimeValue',
    loyalty_member: 'IsLoyaltyMember',
    last_purchase: 'LastPurchase',
  },
};

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const FIRST = [
  'Ann',
  'Bo',
  'Chloé',
  'Dmitri',
  'Eun-ji',
  'François',
  'Grace',
  'Hiro',
  'Ines',
  'José',
  'Kwame',
  'Léa',
  'Mateo',
  'Nadia',
  'Oğuz',
  'Priya',
];
const LAST = ['Smith', "O'Brien", 'Müller', 'Nguyen', 'García', 'Kowalski', 'Zhang', 'Dubois', 'Okafor', 'Rossi'];

export function samplePeople(count = 300, seed = 42): Person[] {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]) => a[Math.floor(r() * a.length)]!;
  const people: Person[] = [];
  for (let i = 1; i <= count; i++) {
    const first = pick(FIRST);
    const last = pick(LAST);
    const segments = SAMPLE_SEGMENTS.filter(() => r() < 0.45);
    if (segments.length === 0) segments.push(pick(SAMPLE_SEGMENTS));
    people.push({
      customerId: `c${String(i).padStart(5, '0')}`,
      brazeUserId: r() < 0.7 ? `braze-${1000 + i}` : '',
      email: `${first.toLowerCase().replace(/[^a-z]/g, '')}.${i}@example.com`,
      phone: r() < 0.6 ? `+1 (555) ${String(1000000 + i).slice(1, 4)}-${String(1000 + i).slice(-4)}` : '',
      firstName: first,
      lastName: last,
      lifetimeValue: (r() * 5000).toFixed(2),
      loyalty: r() < 0.5 ? 'true' : 'false',
      lastPurchase: `2026-0${1 + Math.floor(r() * 9)}-1${Math.floor(r() * 9)}T10:${String(Math.floor(r() * 60)).padStart(2, '0')}:00Z`,
      segments: [...segments],
    });
  }
  // Awkward but valid values.
  people[0]!.firstName = 'Anne, "Annie"';
  people[1]!.lastName = 'Line one\nline two';
  people[2]!.email = 'not-an-email';
  people[3]!.phone = '12';
  people[4]!.brazeUserId = '';
  people[4]!.firstName = '名前';
  return people;
}

const q = (v: string) => (/[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
const rowOf = (p: Person) =>
  [p.customerId, p.brazeUserId, p.email, p.phone, p.firstName, p.lastName, p.lifetimeValue, p.loyalty, p.lastPurchase]
    .map(q)
    .join(',');

/** Rows that must be rejected (each with its reason); they belong to no profile above. */
export const BAD_ROWS = {
  HighValueSegment: [',,nobody@example.com,,No,Identifier,1.00,true,2026-01-01T00:00:00Z'],
  ChurnRisk: ['c90001,braze-90001,wide@example.com,,Too,Wide,1.00,true,2026-01-01T00:00:00Z,extra'],
  NewsletterSubscribers: ['c90002,braze-90002,short@example.com'],
};

export interface SampleFile {
  name: string;
  body: string;
}

export function sampleExportFiles(people = samplePeople()): SampleFile[] {
  const files: SampleFile[] = [];
  const base = `${SAMPLE_FOLDER}`;
  const entities = [];
  for (const segment of SAMPLE_SEGMENTS) {
    const members = people.filter((p) => p.segments.includes(segment));
    const rows = members.map(rowOf);
    // The same profile twice in one segment.
    if (segment === 'ChurnRisk' && members[0]) rows.push(rowOf(members[0]));
    rows.splice(Math.floor(rows.length / 2), 0, ...BAD_ROWS[segment]);
    const header = COLUMNS.map((c) => c.name).join(',');
    const partitions: { name: string; body: string; columnHeaders?: boolean }[] = [];
    if (segment === 'HighValueSegment') {
      partitions.push({ name: `${segment}_1`, body: `${rows.join('\r\n')}\r\n`, columnHeaders: false });
    } else if (segment === 'ChurnRisk') {
      const half = Math.ceil(rows.length / 2);
      partitions.push({
        name: `${segment}_1`,
        body: `\uFEFF${header}\n${rows.slice(0, half).join('\n')}\n`,
        columnHeaders: true,
      });
      partitions.push({ name: `${segment}_2`, body: `\uFEFF${header}\n${rows.slice(half).join('\n')}\n`, columnHeaders: true });
    } else {
      // columnHeaders not stated: the header row is recognised by its names.
      partitions.push({ name: `${segment}_1`, body: `${header}\n${rows.join('\n')}\n` });
    }
    for (const p of partitions) files.push({ name: `${base}/${segment}/${STAMP}/${p.name}.csv`, body: p.body });
    entities.push({
      $type: 'LocalEntity',
      name: segment,
      attributes: COLUMNS,
      partitions: partitions.map((p) => ({
        name: p.name,
        refreshTime: '2026-11-20T06:15:10.000Z',
        location: `https://contosoci.blob.core.windows.net/${SAMPLE_CONTAINER}/${base}/${segment}/${STAMP}/${p.name}.csv`,
        fileFormatSettings: {
          $type: 'CsvFormatSettings',
          ...(p.columnHeaders === undefined ? {} : { columnHeaders: p.columnHeaders }),
          delimiter: ',',
          quoteStyle: 'QuoteStyle.Csv',
          csvStyle: 'CsvStyle.QuoteAlways',
          encoding: 'UTF-8',
        },
      })),
    });
  }
  const model = { name: 'BrazeExport', version: '1.0', modifiedTime: '2026-11-20T06:15:12.000Z', entities };
  files.push({ name: `${base}/model.json`, body: JSON.stringify(model, null, 2) });
  return files;
}

export async function uploadSampleExport(
  blobs: BlobServiceClient,
  files = sampleExportFiles(),
  container = SAMPLE_CONTAINER,
): Promise<void> {
  const c = blobs.getContainerClient(container);
  await c.createIfNotExists();
  // model.json last: it is the snapshot's commit marker.
  const ordered = [...files.filter((f) => !f.name.endsWith('model.json')), ...files.filter((f) => f.name.endsWith('model.json'))];
  for (const f of ordered) await c.getBlockBlobClient(f.name).upload(f.body, Buffer.byteLength(f.body));
}

/** What Braze must hold after exporting the sample with SAMPLE_MATCHING and list membership. */
export function expectedBrazeProfiles(
  people = samplePeople(),
  membershipAttribute = '0000-0000-0000',
  aliasLabel = 'ci_customer_id',
) {
  const emailOk = (e: string) => /^[^@\s]+@[^@\s]+\.[a-z]+$/.test(e);
  return people.map((p) => {
    const identifier = p.brazeUserId
      ? { external_id: p.brazeUserId }
      : { user_alias: { alias_name: p.customerId, alias_label: aliasLabel } };
    const digits = p.phone.replace(/[\s().-]/g, '');
    const attributes: Record<string, unknown> = {
      ...(emailOk(p.email) ? { email: p.email } : {}),
      ...(/^\+?[1-9]\d{6,14}$/.test(digits) ? { phone: digits } : {}),
      first_name: p.firstName,
      last_name: p.lastName,
      lifetime_value: Number(p.lifetimeValue),
      loyalty_member: p.loyalty === 'true',
      last_purchase: new Date(p.lastPurchase).toISOString(),
      [membershipAttribute]: [...p.segments].sort(),
    };
    return { identifier, attributes };
  });
}
