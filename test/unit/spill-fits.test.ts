// A run whose spill cannot fit the instance's temp folder fails before it reads anything, saying why.
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SPILL_HEADROOM_BYTES, spillWontFit } from '../../shared/engine/spill/run-temp-dir';

const GB = 1024 ** 3;

describe('spill room', () => {
  it('refuses a snapshot larger than the free temp space (Flex Consumption: about 0.8 GB), naming sizes and what to do', () => {
    const why = spillWontFit(os.tmpdir(), 2 * GB, 0.8 * GB);
    expect(why).toMatch(/2\.00 GB of CSV/);
    expect(why).toMatch(/0\.80 GB free/);
    expect(why).toMatch(/fewer segments or columns/);
    expect(why).toMatch(/Platform limits/);
  });

  it('lets a snapshot through when it fits with headroom, and when free space cannot be told', () => {
    expect(spillWontFit(os.tmpdir(), 0.5 * GB, 0.8 * GB)).toBeNull();
    expect(spillWontFit(os.tmpdir(), 0.8 * GB - SPILL_HEADROOM_BYTES, 0.8 * GB)).toBeNull();
    expect(spillWontFit(os.tmpdir(), 0.8 * GB, 0.8 * GB)).not.toBeNull();
    expect(spillWontFit(path.join(os.tmpdir(), 'no-such-folder-here', 'x'), 100 * GB)).toBeNull();
    // This machine's real temp folder takes a small snapshot.
    expect(spillWontFit(os.tmpdir(), 1024)).toBeNull();
  });
});
