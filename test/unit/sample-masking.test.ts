// Masking of samples: a value is shown as an e-mail address (first character and domain) only when
// the whole value is one address; a phone mask only for what looks like a phone number; anything
// else as masked text. Discovery masks by value, never by what a CI column is called.
import { describe, expect, it } from 'vitest';
import { maskEmail, maskPhone, maskSample, maskValue } from '../../shared/preview/data-points';
import { samplesFrom } from '../../shared/snapshot/column-samples';

describe('sample masking', () => {
  it('shows no address of a value holding several', () => {
    const value = 'a@x.com; jane.roe@private.org';
    for (const masked of [maskSample(value), maskValue('email', value), maskEmail(value)]) {
      expect(masked).toBe('a' + '•'.repeat(value.length - 1));
    }
  });

  it('shows none of free text holding an @', () => {
    const value = 'x@home: diagnosed HIV+ Jane Roe';
    expect(maskSample(value)).toBe('x' + '•'.repeat(value.length - 1));
    expect(maskValue('email', value)).toBe('x' + '•'.repeat(value.length - 1));
  });

  it('hides the letters of a name in a phone column', () => {
    expect(maskPhone('Jane Roe 555-123-4567')).toBe('J' + '•'.repeat(20));
    expect(maskValue('phone', 'Jane Roe 555-123-4567')).not.toMatch(/[A-Za-z]{2}/);
    // A phone number still keeps its punctuation and last two digits.
    expect(maskValue('phone', '+1 (555) 010-2030')).toBe('+• (•••) •••-••30');
    expect(maskEmail('jane.doe@example.com')).toBe('j•••••••@example.com');
  });

  it('masks discovered columns by value, whatever the column is called', () => {
    const columns = ['Id', 'Notes', 'AltEmails', 'phone'].map((name) => ({ name, dataType: 'string' }));
    const csv =
      'Id,Notes,AltEmails,phone\n1,"x@home: diagnosed HIV+ Jane Roe","a@x.com; jane.roe@private.org",Jane Roe 555-123-4567\n';
    const samples = samplesFrom(Buffer.from(csv), true, { hasHeader: true, delimiter: ',', columns });
    const text = JSON.stringify(samples);
    for (const raw of ['home', 'HIV', 'Jane', 'Roe', 'private.org', 'x.com', '67']) expect(text).not.toContain(raw);
    expect(samples[3]).toEqual(['J' + '•'.repeat(20)]);
  });
});
