import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/core/duration.js';
import { UsageError } from '../../src/core/errors.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

describe('parseDuration', () => {
  it.each([
    ['90s', 90 * SECOND],
    ['15m', 15 * MINUTE],
    ['6h', 6 * HOUR],
    ['2d', 2 * DAY],
    ['500ms', 500],
    ['1h30m', 90 * MINUTE],
    ['1d12h', 36 * HOUR],
    ['1.5h', 90 * MINUTE],
    ['0s', 0],
    [' 6h ', 6 * HOUR],
  ])('reads %j as %d ms', (text, ms) => {
    expect(parseDuration(text, '--fresh-within')).toBe(ms);
  });

  it.each([
    '',
    '   ',
    '6',
    'h',
    '6 h',
    '6hours',
    '6H',
    '-5m',
    '+5m',
    '1e3s',
    '.5h',
    '5m30',
    '6h foo',
    '1w',
    'PT6H',
    `${'9'.repeat(400)}d`,
  ])('refuses %j', (text) => {
    expect(() => parseDuration(text, '--stale-after')).toThrow(UsageError);
    expect(() => parseDuration(text, '--stale-after')).toThrow(
      `--stale-after ${JSON.stringify(text)} is not a duration.`,
    );
  });

  it('hints at the accepted forms', () => {
    try {
      parseDuration('soon', '--fresh-within');
      expect.unreachable();
    } catch (error) {
      expect((error as UsageError).hint).toBe('Write a number and a unit: 90s, 15m, 6h or 2d.');
    }
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [42 * SECOND, '42s'],
    [90 * SECOND, '1m 30s'],
    [15 * MINUTE, '15m'],
    [6 * HOUR, '6h'],
    [6 * HOUR + 5 * MINUTE, '6h 5m'],
    [3 * DAY + 2 * HOUR, '3d 2h'],
    [50 * DAY, '50d'],
    [59.6 * SECOND, '1m'],
    [-5 * MINUTE, '-5m'],
  ])('writes %d ms as %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
