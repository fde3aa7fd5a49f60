// The fix's own lines, human and JSON: what was done, what failed, what was held back.
import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import { classifyRun } from '../../src/core/classify.js';
import type { FixReport } from '../../src/core/fix.js';
import { planFix } from '../../src/core/plan.js';
import { renderFixHuman } from '../../src/render/human-fix.js';
import { renderFixJson } from '../../src/render/json.js';
import { evidence, FINAL_PATH, file, GONE, HOUR, MARKER_PATH, STAGING, staged } from '../support/run-evidence.js';

const plain = new Chalk({ level: 0 });
const before = classifyRun(evidence({ staging: [staged(101, HOUR, GONE), staged(202, HOUR, GONE)] }));
const done = classifyRun(evidence({ final: file(FINAL_PATH, HOUR), marker: file(MARKER_PATH, HOUR) }));
const plan = planFix(before, ['job', '{date}'], undefined);
const [first, second] = plan.removals.map((r) => r.path) as [string, string];

function report(overrides: Partial<FixReport>): FixReport {
  return {
    dryRun: false,
    before,
    plan,
    refused: [],
    steps: [],
    stopped: null,
    rerun: null,
    rerunSkipped: null,
    after: done,
    exitCode: done.exitCode,
    ...overrides,
  };
}

describe('renderFixHuman', () => {
  it('a re-run held back: says why, and that nothing was started', () => {
    const text = renderFixHuman(
      report({
        steps: [
          { path: first, bytes: 10, pid: 101, result: 'deleted' },
          { path: second, bytes: 10, pid: 202, result: 'deleted' },
        ],
        rerunSkipped: 'the run is DONE now: its output and marker were published meanwhile',
      }),
      plain,
    );
    expect(text).toContain('  not re-run: the run is DONE now: its output and marker were published meanwhile\n');
    expect(text).not.toContain('re-ran');
  });

  it('a fix stopped midway: each step, then why it stopped', () => {
    const text = renderFixHuman(
      report({
        steps: [
          { path: first, bytes: 10, pid: 101, result: 'failed', reason: 'EPERM' },
          { path: second, bytes: 10, pid: 202, result: 'not-attempted', reason: 'the fix stopped at an earlier failure' },
        ],
        stopped: `removing ${first} failed (EPERM); 0 of 2 removed before it`,
      }),
      plain,
    );
    expect(text).toContain(`  could not remove ${first} (10 B, writer PID 101): EPERM\n`);
    expect(text).toContain(`  not attempted ${second} (10 B, writer PID 202): the fix stopped at an earlier failure\n`);
    expect(text).toContain(`  stopped: removing ${first} failed (EPERM)`);
  });
});

describe('renderFixJson', () => {
  it('carries stopped and rerunSkipped, null when nothing of the kind happened', () => {
    const fix = (r: FixReport) => (JSON.parse(renderFixJson(r)) as { fix: Record<string, unknown> }).fix;
    expect(fix(report({}))).toMatchObject({ stopped: null, rerunSkipped: null });
    expect(fix(report({ stopped: 'x', rerunSkipped: 'y' }))).toMatchObject({ stopped: 'x', rerunSkipped: 'y' });
  });
});

describe('renderFixHuman', () => {
  it('attack (issue 9.11): paths, reasons and the re-run command holding ESC or bidi characters render escaped', () => {
    const before = classifyRun(evidence({ staging: [staged(91247, 3 * HOUR, GONE)] }));
    const report: FixReport = {
      dryRun: false,
      before,
      plan: { removals: [], rerun: null, rerunMissing: false } as unknown as FixReport['plan'],
      refused: [{ path: `${STAGING}/a\u001b[2J.csv`, reason: 'it changed\u001b]0;pwned\u0007' }],
      stopped: null,
      rerunSkipped: null,
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
