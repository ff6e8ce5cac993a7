// The rejected-rows report is opened in spreadsheets: no cell may run as a formula.
import { describe, expect, it } from 'vitest';
import { rejectedCsv } from '../../shared/runs/rejected-report';

describe('rejected-rows report', () => {
  it.each(['=HYPERLINK("http://x","y")', '+1+1', '-2+3', '@SUM(A1)', '\tcmd', '\r=1'])(
    'neutralizes a cell starting %j',
    (value) => {
      const csv = rejectedCsv([{ segment: 'S', partition: 'S_1.csv', record: 3, profileId: value, reason: value }], 1).toString(
        'utf8',
      );
      // No cell (after an opening quote) starts with a character a spreadsheet reads as a formula.
      expect(csv).not.toMatch(/(^|,|\n)"?[=+\-@\t\r]/);
      expect(csv.match(/'/g)).toHaveLength(2); // profileId and reason, each neutralized once
    },
  );

  it('leaves ordinary cells alone and quotes what CSV needs', () => {
    const csv = rejectedCsv(
      [
        {
          segment: 'High value',
          partition: 'S_1.csv',
          record: 1,
          profileId: 'c-1',
          reason: 'row has 3 fields, the table has 4 columns',
        },
      ],
      3,
    ).toString('utf8');
    expect(csv).toBe(
      'segment,partition,record,profileId,reason\nHigh value,S_1.csv,1,c-1,"row has 3 fields, the table has 4 columns"\n,,,,"…and 2 more rows not listed"\n',
    );
  });
});
