// What a sampled verification says about the whole export: the issue's own example, and an interval once drift is found.
import { describe, expect, it } from 'vitest';
import { confidenceStatement } from '../../shared/verify/sample';

describe('confidence of a sample', () => {
  it('0 drift in 2,000 sampled profiles bounds drift below 0.15 % at 95 %', () => {
    expect(confidenceStatement(0, 2000)).toBe('0 drift in 2,000 sampled profiles: drift below 0.15 % at 95 %');
  });
  it('drift found: an interval around the share that holds it', () => {
    expect(confidenceStatement(20, 2000)).toBe('20 drifted in 2,000 sampled profiles: drift between 0.65 % and 1.54 % at 95 %');
  });
});
