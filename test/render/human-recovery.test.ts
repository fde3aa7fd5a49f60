// The recovery loop's part of the human view: a process name from the kernel
// log, a note, an input path from the config are text from outside.
import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import { classifyRun } from '../../src/core/classify.js';
import { renderRecoveryHuman } from '../../src/render/human-recovery.js';
import { evidence, GONE, HOUR, staged } from '../support/run-evidence.js';

describe('renderRecoveryHuman', () => {
  it('attack (issue 9.11): a kernel-log detail, a note and an input path holding ESC or bidi characters render escaped', () => {
    const diagnosis = {
      ...classifyRun(evidence({ staging: [staged(91247, 3 * HOUR, GONE)] })),
      causes: [{ kind: 'oom-kill' as const, pid: 91247, at: '2026-04-24T06:00:00Z', detail: 'killed job\u001b[2J (anon-rss 9 MiB)' }],
      causeNotes: ['the kernel log says \u001b]0;pwned\u0007'],
      inputs: [{ template: 'in/{date}\u202e.csv', path: '/in/2026-04-24\u202e.csv', status: 'missing' as const, detail: 'not there\u001b[8m' }],
    };
    const text = renderRecoveryHuman(diagnosis, new Chalk({ level: 0 })).join('\n');
    // Newlines are the view's own; nothing else unprintable may reach the terminal.
    expect(text.replace(/\n/g, '')).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u);
    for (const shown of ['killed job\\x1b[2J', 'the kernel log says \\x1b]0;pwned\\x07', '/in/2026-04-24\\u{202e}.csv', 'not there\\x1b[8m'])
      expect(text).toContain(shown);
  });
});
