import { describe, expect, it } from 'vitest';
import { escapeText } from '../../src/render/format.js';

describe('escapeText', () => {
  it.each([
    ['\u001b[2J\u001b[H', '\\x1b[2J\\x1b[H', 'ESC sequences: clear the screen, move the cursor'],
    ['\u001b]0;pwned\u0007', '\\x1b]0;pwned\\x07', 'an OSC title change, ended by BEL'],
    ['a\nb\r\tc', 'a\\x0ab\\x0d\\x09c', 'newline, carriage return and tab'],
    ['\u009b31m', '\\x9b31m', 'the C1 CSI'],
    ['\u007f', '\\x7f', 'DEL'],
    ['report_\u202evsc.exe', 'report_\\u{202e}vsc.exe', 'a right-to-left override'],
    ['2026-04-24\u200b', '2026-04-24\\u{200b}', 'a zero-width space'],
    ['\u2066a\u2067b\u2068c\u2069', '\\u{2066}a\\u{2067}b\\u{2068}c\\u{2069}', 'bidi isolates'],
    ['\ufeffx', '\\u{feff}x', 'a byte-order mark'],
    ['a\u2028b\u2029c', 'a\\u{2028}b\\u{2029}c', 'line and paragraph separators'],
    ['a\ud800b', 'a\\u{d800}b', 'a lone surrogate'],
  ])('escapes %j (%s)', (text, escaped) => {
    expect(escapeText(text)).toBe(escaped);
  });

  it('leaves printable text alone, accents, CJK and emoji included', () => {
    const text = '/data/_staging/2026-04-24.91247.csv résumé 日本 🚀 ~!@#$%^&*()[]{}\\';
    expect(escapeText(text)).toBe(text);
  });
});
