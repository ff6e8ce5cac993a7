// The console's limits form sends only the settings the person changed: a page loaded before
// another Admin's edit must not write back the other setting's stale value.
import { describe, expect, it } from 'vitest';
import { changedLimits } from '../../console/src/pages/limits-patch';

describe('the limits form', () => {
  const loaded = { requestBudget: 3000, hourlyRequestCap: 5000 };
  it('sends only the changed setting', () => {
    expect(changedLimits(loaded, { requestBudget: 3000, hourlyRequestCap: 100 })).toEqual({ hourlyRequestCap: 100 });
    expect(changedLimits(loaded, { requestBudget: 200, hourlyRequestCap: 5000 })).toEqual({ requestBudget: 200 });
    expect(changedLimits(loaded, { requestBudget: 200, hourlyRequestCap: null })).toEqual({
      requestBudget: 200,
      hourlyRequestCap: null,
    });
  });
  it('sends nothing when nothing changed (no cap is null, as the connection has it unset)', () => {
    expect(changedLimits(loaded, loaded)).toBeNull();
    expect(changedLimits({ requestBudget: 3000 }, { requestBudget: 3000, hourlyRequestCap: null })).toBeNull();
  });
});
