// Issue 9, item 11: instants outside 1970 to 9999 have no run keys. Before,
// they were a RangeError (exit 1 with a stack) or a run key "-000001-12".
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/run.js';
import type { FileSystem } from '../../src/core/fs.js';
import { recordingIo } from './cli-io.js';

const LAYOUT = ['--out-dir', '/data/out', '--staging-dir', '/data/stg', '--final', 'r_{date}.csv'];

/** A disk that fails the test if it is touched: a usage error comes before any I/O. */
const untouchable = new Proxy({} as FileSystem, {
  get: (_, name) => () => {
    throw new Error(`the disk was touched (${String(name)})`);
  },
});

describe('dates outside 1970 to 9999 are refused before any I/O', () => {
  it.each([
    ['scan --since 999999999d', ['scan', ...LAYOUT, '--since', '999999999d'], /^crashdiag: --since 999999999d back from .* falls outside the years 1970 to 9999\.\n/],
    ['scan --now 0000-01-01 --daily', ['scan', ...LAYOUT, '--now', '0000-01-01', '--daily'], /^crashdiag: --now 0000-01-01 falls outside the years 1970 to 9999\.\n/],
    ['scan --now 1969-12-31', ['scan', ...LAYOUT, '--now', '1969-12-31T23:59:59Z'], /^crashdiag: --now 1969-12-31T23:59:59Z falls outside/],
    ['scan --now 1971-01-01 --since 400d', ['scan', ...LAYOUT, '--now', '1971-01-01', '--since', '400d'], /^crashdiag: --since 400d back from 1971-01-01T00:00:00\.000Z falls outside/],
    ['diagnose --now 0000-01-01', ['diagnose', '2026-04-24', ...LAYOUT, '--now', '0000-01-01'], /^crashdiag: --now 0000-01-01 falls outside/],
  ])('%s: exit 2, one sentence, no stack', async (_, args, message) => {
    const { io, stderr } = recordingIo({ fs: untouchable });
    expect(await run(args, io)).toBe(2);
    expect(stderr()).toMatch(message);
    expect(stderr()).not.toMatch(/RangeError|\n\s+at /);
  });

  it('the last day of 9999 is still a date', async () => {
    const { io, stderr } = recordingIo({ fs: untouchable });
    // Past every date check, it reaches the disk (which this test forbids).
    await run(['diagnose', '9999-12-31', ...LAYOUT, '--now', '9999-12-31T12:00:00Z'], io);
    expect(stderr()).not.toMatch(/falls outside/);
    expect(stderr()).toContain('the disk was touched');
  });
});
