import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import { classifyRun } from '../../src/core/classify.js';
import type { FixReport } from '../../src/core/fix.js';
import { renderFixHuman } from '../../src/render/human-fix.js';
import { evidence, GONE, HOUR, STAGING, staged } from '../support/run-evidence.js';

describe('renderFixHuman', () => {
  it('attack (issue 9.11): paths, reasons and the re-run command holding ESC or bidi characters render escaped', () => {
    const before = classifyRun(evidence({ staging: [staged(91247, 3 * HOUR, GONE)] }));
    const report: FixReport = {
      dryRun: false,
      before,
      plan: { removals: [], rerun: null, rerunMissing: false } as unknown as FixReport['plan'],
      refused: [{ path: `${STAGING}/a\u001b[2J.csv`, reason: 'it changed\u001b]0;pwned\u0007' }],
      steps: [
        {
          path: `${STAGING}/b\u202e.csv`,
          bytes: 3,
          pid: 91247,
          result: 'quarantined',
          to: '/q/b\u001b[1A.csv',
          reason: 'moved\u2066',
        },
      ],
      rerun: { argv: ['job', '\u001b[8m'], result: { exitStatus: null, signal: null, error: 'ENOENT\u001b[H' } },
      after: before,
      exitCode: 11,
    };
    const text = renderFixHuman(report, new Chalk({ level: 0 }));
    // Newlines are the view's own; nothing else unprintable may reach the terminal.
    expect(text.replace(/\n/g, '')).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u);
    for (const shown of ['a\\x1b[2J.csv', 'it changed\\x1b]0;pwned\\x07', 'b\\u{202e}.csv', '/q/b\\x1b[1A.csv', 'moved\\u{2066}', '\\x1b[8m', 'ENOENT\\x1b[H'])
      expect(text).toContain(shown);
  });
});
