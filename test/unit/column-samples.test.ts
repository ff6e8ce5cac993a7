// Column samples from the start of a partition: whole records only, the header and records a run
// would reject left out, values typed by their CDM type and masked as preview samples are.
import { describe, expect, it } from 'vitest';
import type { ContainerClient } from '@azure/storage-blob';
import { readHead, samplesFrom } from '../../shared/snapshot/column-samples';

const columns = [
  { name: 'Id', dataType: 'string' },
  { name: 'Email', dataType: 'string' },
  { name: 'Score', dataType: 'int64' },
];
const source = { hasHeader: undefined, delimiter: ',', columns };
const text = (s: string) => Buffer.from(s, 'utf8');

describe('samplesFrom', () => {
  it('skips a header equal to the column names (after a BOM), empty values and records of another width', () => {
    const csv = '\uFEFFId,Email,Score\nabc,ann@example.com,12\n,,\nshort,row\nde,bo@example.org,7\n';
    expect(samplesFrom(text(csv), true, source)).toEqual([
      ['a••', 'd•'],
      ['a••@example.com', 'b•@example.org'],
      [99, 9],
    ]);
  });

  it('leaves out the record a prefix cuts, also inside a quoted newline', () => {
    const csv = 'a1,ann@example.com,1\n"b\n2",bo@example.com,22\nc3,carl@example.com,333\n';
    // Cut inside the second record's quoted newline: only the first is whole.
    expect(samplesFrom(text(csv).subarray(0, 24), false, source)).toEqual([['a•'], ['a••@example.com'], [9]]);
    // Cut inside the third: the quoted newline stays in its (masked) value.
    expect(samplesFrom(text(csv).subarray(0, csv.length - 5), false, source)[0]).toEqual(['a•', 'b••']);
  });

  it('keeps three distinct values as shown, and a value its type refuses as masked text', () => {
    const csv = ['aa,x@example.com,1', 'bb,y@example.com,2', 'cc,z@example.com,x3', 'dd,w@example.com,333', ''].join('\n');
    expect(samplesFrom(text(csv), true, source)).toEqual([
      ['a•', 'b•', 'c•'],
      ['x@example.com', 'y@example.com', 'z@example.com'],
      [9, 'x•', 999],
    ]);
  });
});

describe('samplesFrom with a header in another order than model.json', () => {
  it('maps each field by the header name (trimmed, in any case), as a run does; model.json gives the types', () => {
    const model = [
      { name: 'phone', dataType: 'string' },
      { name: 'FirstName', dataType: 'string' },
      { name: 'CustomerId', dataType: 'int64' },
      { name: 'Email', dataType: 'string' },
    ];
    const expected = [['+•••••••••••'], ['J•••••••'], [999999], ['j•••••••@example.com']];
    const csv = ' firstname ,PHONE,Email,CustomerId\nJane Roe,+15551234567,jane.roe@example.com,123456\n';
    expect(samplesFrom(text(csv), true, { hasHeader: true, delimiter: ',', columns: model })).toEqual(expected);
    // A header column model.json lacks gives no samples; the header's width is the record's.
    const extra = 'FirstName,phone,Email,CustomerId,Extra\nJane Roe,+15551234567,jane.roe@example.com,123456,x\n';
    expect(samplesFrom(text(extra), true, { hasHeader: true, delimiter: ',', columns: model })).toEqual(expected);
  });
});

describe('readHead', () => {
  it('gives up on a read slower than its time (the storage client is handed the abort signal)', async () => {
    const container = {
      getBlobClient: () => ({
        download: (_offset: number, _count: number, options: { abortSignal: AbortSignal }) =>
          new Promise((_resolve, reject) => options.abortSignal.addEventListener('abort', () => reject(new Error('aborted')))),
      }),
    } as unknown as ContainerClient;
    const started = Date.now();
    await expect(readHead(container, 'slow.csv', 1024, 50)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
