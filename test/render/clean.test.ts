import { describe, expect, it } from 'vitest';
import { renderWouldRemove } from '../../src/render/clean.js';

describe('renderWouldRemove: a dry run\'s line per orphan, written as it is met', () => {
  it.each([
    ['/data/_staging/2026-04-24.91247.csv', '  would remove /data/_staging/2026-04-24.91247.csv\n', 'a plain path, as it is'],
    ['/stg/x\u001b]0;pwned\u0007.csv', '  would remove /stg/x\\x1b]0;pwned\\x07.csv\n', 'a name from disk cannot drive the terminal'],
    ['/stg/a\nb.csv', '  would remove /stg/a\\x0ab.csv\n', 'a newline in a name does not start a line of its own'],
  ])('%j (%s)', (path, line) => {
    expect(renderWouldRemove({ path, bytes: 1, pid: 2, ageSeconds: 3 })).toBe(line);
  });
});
