import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import { isValidRunKey, validateRunKey } from '../../src/core/run-key.js';

describe('validateRunKey', () => {
  it.each(['2026-04-24', '2026-04-24T06', '2026-04-24T06:00', 'run_42', 'run.42', 'a+b@c', 'x'.repeat(128)])(
    'accepts %j and returns it unchanged',
    (key) => {
      expect(validateRunKey(key)).toBe(key);
      expect(isValidRunKey(key)).toBe(true);
    },
  );

  it.each([
    ['', /is empty/],
    ['x'.repeat(129), /129 characters long; at most 128/],
    ['.', /not a usable name/],
    ['-rf', /not a usable name/],
    ['--json', /not a usable name/],
    ['2026/04/24', /path separator/],
    ['../x', /path separator/],
    ['a\\b', /path separator/],
    ['..', /"\.\."/],
    ['a..b', /"\.\."/],
    ['2026-04-*', /glob character/],
    ['2026-04-2?', /glob character/],
    ['2026-04-[12]', /glob character/],
    ['2026-04-2]', /glob character/],
    ['{date}', /glob character/],
    ['a}', /glob character/],
    ['2026 04 24', /whitespace or a control character/],
    ['2026-04-24\t', /whitespace or a control character/],
    ['2026-04-24\n', /whitespace or a control character/],
    ['a\u0000b', /whitespace or a control character/],
    ['a\u0007b', /whitespace or a control character/],
    ['a\u001bb', /whitespace or a control character/],
    ['a\u007fb', /whitespace or a control character/],
    ['a\u0085b', /whitespace or a control character/],
    ['a\u00a0b', /whitespace or a control character/],
    ['a\u2028b', /whitespace or a control character/],
    // attack (issue 9.11): keys that look like other keys.
    ['2026-04-\u202e42-20', /invisible or bidi format character/],
    ['2026-04-24\u200b', /invisible or bidi format character/],
    ['\u2066a\u2069', /invisible or bidi format character/],
    ['a\u2067b', /invisible or bidi format character/],
    ['a\u2068b', /invisible or bidi format character/],
    ['\ufeff2026-04-24', /whitespace or a control character/], // JS counts U+FEFF as whitespace
    ['2026-04\u00ad-24', /invisible or bidi format character/],
    ['a\u200db', /invisible or bidi format character/],
    ['a\u061cb', /invisible or bidi format character/],
    ['a\ud800b', /invisible or bidi format character/],
    ['a;b', /shell metacharacter/],
    ['a|b', /shell metacharacter/],
    ['a&b', /shell metacharacter/],
    ['$HOME', /shell metacharacter/],
    ['a<b', /shell metacharacter/],
    ['a>b', /shell metacharacter/],
    ['it\'s', /shell metacharacter/],
    ['say"hi"', /shell metacharacter/],
    ['a`id`', /shell metacharacter/],
    ['$(id)', /shell metacharacter/],
  ])('refuses %j', (key, message) => {
    expect(() => validateRunKey(key)).toThrow(UsageError);
    expect(() => validateRunKey(key)).toThrow(message);
    expect(isValidRunKey(key)).toBe(false);
  });

  it('quotes the refused key and hints at what a key may hold', () => {
    let caught: unknown;
    try {
      validateRunKey('../x');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as UsageError).message).toBe('The run key "../x" contains a path separator.');
    expect((caught as UsageError).hint).toMatch(/letters, digits/);
  });
});
