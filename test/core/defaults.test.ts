import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FRESH_WITHIN,
  DEFAULT_LOCK_TIMEOUT,
  DEFAULT_S3_TIMEOUT,
  DEFAULT_MARKER,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_OLDER_THAN,
  DEFAULT_SINCE,
  DEFAULT_STAGING,
  DEFAULT_STALE_AFTER,
} from '../../src/core/defaults.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The last cell of the README's flag-table row for `flag`. */
function tableDefault(flag: string): string | undefined {
  const row = README.split('\n').find((line) => line.startsWith(`| \`${flag} `) || line.startsWith(`| \`${flag}\``));
  return row?.split('|').at(-2)?.trim();
}

// The README is prose, so it cannot import the constants: it is held to them here.
describe('the README states the defaults the code uses', () => {
  it.each([
    ['--staging', `\`${DEFAULT_STAGING}\``],
    ['--marker', `\`${DEFAULT_MARKER}\``],
    ['--fresh-within', `\`${DEFAULT_FRESH_WITHIN}\``],
    ['--stale-after', `\`${DEFAULT_STALE_AFTER}\``],
    ['--lock-timeout', `\`${DEFAULT_LOCK_TIMEOUT}\``],
    ['--timeout', `\`${DEFAULT_S3_TIMEOUT}\``],
    ['--max-attempts', `config \`maxAttempts\`, ${DEFAULT_MAX_ATTEMPTS}`],
  ])('%s: %s', (flag, shown) => {
    expect(tableDefault(flag)).toBe(shown);
  });

  it.each([
    ['--since', DEFAULT_SINCE],
    ['--older-than', DEFAULT_OLDER_THAN],
  ])('%s (default %s)', (flag, value) => {
    expect(README).toContain(`\`${flag}\` (default \`${value}\`)`);
  });
});
