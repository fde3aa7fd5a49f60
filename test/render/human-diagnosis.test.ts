import { basename } from 'node:path';
import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import { classifyFolded, classifyRun, foldRunEntry, newStagingFold } from '../../src/core/classify.js';
import type { RunEvidence } from '../../src/core/evidence.js';
import { renderDiagnosisHuman } from '../../src/render/human-diagnosis.js';
import {
  entry,
  evidence,
  FINAL_PATH,
  file,
  fixedNameEvidence,
  GONE,
  HOUR,
  KEY,
  LATEST_MARKER_PATH,
  LATEST_PATH,
  MARKER_PATH,
  MINUTE,
  NOW,
  OUT,
  STAGING,
  staged,
} from '../support/run-evidence.js';

const plain = new Chalk({ level: 0 });

function render(input: RunEvidence, rerun?: readonly string[], width?: number): string {
  return renderDiagnosisHuman(
    {
      diagnosis: classifyRun(input),
      pipeline: undefined,
      rerun,
      invocation: ['crashdiag', 'diagnose', KEY, '--pipeline', 'refunds'],
      width,
      localHost: 'batch-01',
    },
    plain,
  );
}

/** The evidence table's row for one path: its last cell. */
function note(text: string, path: string): string | undefined {
  const row = text.split('\n').find((line) => line.startsWith('│') && line.includes(` ${basename(path)} `));
  return row
    ?.split('│')
    .map((cell) => cell.trim())
    .filter(Boolean)
    .at(-1);
}

describe('renderDiagnosisHuman', () => {
  it('D: the fix command, then the exact rm and re-run by hand', () => {
    const text = render(evidence({ staging: [staged(91247, 3 * HOUR, GONE)] }), ['job', '--date', '{date}']);
    expect(text).toContain('crashdiag diagnose 2026-04-24 --pipeline refunds --fix');
    expect(text).toContain(`rm -- ${STAGING}/${KEY}.91247.csv`);
    expect(text).toContain('job --date 2026-04-24');
    expect(text).toContain('runbook: crashdiag runbook D');
    expect(text).not.toContain('\u001b[');
  });

  it('A/B/C without a known command asks for --rerun', () => {
    const text = render(evidence());
    expect(text).toContain('--fix --rerun \'<command with {date}>\'');
  });

  it.each([
    ['this run', evidence({ final: file(FINAL_PATH, HOUR), marker: file(MARKER_PATH, HOUR) }), FINAL_PATH],
    [
      'an earlier run',
      fixedNameEvidence({ final: file(LATEST_PATH, 7 * HOUR), marker: file(LATEST_MARKER_PATH, 7 * HOUR) }),
      LATEST_PATH,
    ],
    ['missing', evidence(), FINAL_PATH],
    [
      'see findings',
      evidence({ final: entry(FINAL_PATH, 'directory'), marker: file(MARKER_PATH, HOUR) }),
      FINAL_PATH,
    ],
    [
      'see findings',
      evidence({ final: entry(FINAL_PATH, 'symlink'), marker: file(MARKER_PATH, HOUR) }),
      FINAL_PATH,
    ],
  ])('labels the output %j', (label, input, path) => {
    expect(note(render(input), path)).toBe(label);
  });

  it.each([
    ['present', evidence({ final: file(FINAL_PATH, HOUR), marker: file(MARKER_PATH, HOUR) })],
    ['missing', evidence({ final: file(FINAL_PATH, HOUR) })],
    ['see findings', evidence({ marker: file(MARKER_PATH, HOUR) })],
    ['see findings', evidence({ final: file(FINAL_PATH, HOUR), marker: entry(MARKER_PATH, 'directory') })],
  ])('labels the marker %j', (label, input) => {
    expect(note(render(input), MARKER_PATH)).toBe(label);
  });

  it('attack (issue 9.11): names and reasons holding ESC or bidi characters render escaped', () => {
    const evil = `${STAGING}/x\u001b[2J\u001b]0;pwned\u0007\u202e.csv`;
    const input = evidence({
      staging: [{ ...staged(91247, 3 * HOUR, GONE), path: evil }],
      marker: entry(`${MARKER_PATH}\u001b[31m`, 'directory'),
    });
    const text = renderDiagnosisHuman(
      {
        diagnosis: classifyRun(input),
        pipeline: 'refunds\u001b[8m',
        rerun: undefined,
        invocation: ['crashdiag', 'diagnose', KEY],
      },
      plain,
    );
    // Newlines are the view's own; nothing else unprintable may reach the terminal.
    expect(text.replace(/\n/g, '')).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u);
    expect(text).toContain('x\\x1b[2J\\x1b]0;pwned\\x07\\u{202e}.csv');
    expect(text).toContain('pipeline refunds\\x1b[8m');
    // Its directory is printed once above it: the name alone, escaped.
    expect(text).toContain(`${basename(MARKER_PATH)}\\x1b[31m`);
  });

  it('a writer judged by age is presumed, with its age and why, not "PID 4242@otherhost alive"', () => {
    const text = render(
      evidence({ staging: [staged(4242, 40_000, { checked: false, why: 'written on another host' }, { host: 'otherhost' })] }),
    );
    expect(text).toContain('presumed alive (modified 40s ago, written on another host)');
    expect(text).not.toMatch(/PID 4242@otherhost alive/);
  });

  it('a live writer\'s command line is in the evidence, so a stray sleep is not taken for the job', () => {
    const live = { checked: true, facts: { exists: true, startMs: NOW - HOUR, command: 'sleep 600' } } as const;
    const text = render(evidence({ staging: [staged(4242, MINUTE, live)] }));
    expect(text).toContain('PID 4242 alive');
    expect(text).toContain('command: sleep 600');
  });

  it('shows the marker\'s age', () => {
    const text = render(evidence({ final: file(FINAL_PATH, 2 * HOUR), marker: file(MARKER_PATH, HOUR) }));
    const row = text.split('\n').find((line) => line.includes(basename(MARKER_PATH)));
    expect(row).toContain('1h');
  });

  it.each([
    [1, '1 orphaned staging file with'],
    [2, '2 orphaned staging files with'],
  ])('counts %i orphan(s) with the right plural', (n, words) => {
    const staging = Array.from({ length: n }, (_, i) => staged(91247 + i, 3 * HOUR, GONE));
    const text = render(evidence({ staging }));
    expect(text).toContain(words);
    expect(text).not.toContain('(s)');
  });

  it('prints each directory once and the files by name', () => {
    const text = render(evidence({ staging: [staged(91247, 3 * HOUR, GONE)] }));
    expect(text).toContain(`output dir:  ${OUT}`);
    expect(text).toContain(`staging dir: ${STAGING}`);
    expect(note(text, `${STAGING}/${KEY}.91247.csv`)).toBe('PID 91247 dead');
  });

  it('at 80 columns no line of the evidence is wider than 80, long paths cut in the middle', () => {
    const deep = `${STAGING}/${'very-long-directory-name/'.repeat(6)}`;
    const input = evidence({
      final: file(`${OUT}/${'a-very-long-output-name-'.repeat(4)}${KEY}.csv`, HOUR),
      staging: [
        { ...staged(91247, 3 * HOUR, GONE), path: `${deep}${KEY}.91247.csv` },
        staged(4242, 40_000, { checked: false, why: 'written on another host' }, { host: 'otherhost' }),
      ],
    });
    const text = render(input, undefined, 80);
    // The commands to paste are never cut; the table, the directories and the reasons fit.
    const wide = text.split('\n').filter((line) => /^(│|┌|└| {2}\S)/.test(line));
    expect(wide.length).toBeGreaterThan(6);
    for (const line of wide) expect([...line].length, line).toBeLessThanOrEqual(80);
    expect(text).toContain('…');
  });
});

describe('renderDiagnosisHuman: orphans in S3', () => {
  it('D: the removal by hand is one `aws s3 rm` per object, never an rm of a URL', () => {
    const inS3 = (pid: number) => {
      const orphan = staged(pid, 3 * HOUR, GONE);
      return { ...orphan, path: `s3://refunds-data/_staging/${orphan.name}` };
    };
    const text = render(evidence({ staging: [inS3(91247), inS3(91248)] }), ['job', '--date', '{date}']);
    expect(text).toContain(`aws s3 rm s3://refunds-data/_staging/${KEY}.91247.csv`);
    expect(text).toContain(`aws s3 rm s3://refunds-data/_staging/${KEY}.91248.csv`);
    expect(text).not.toContain('rm --');
  });
});

describe('renderDiagnosisHuman: a key with many orphans', () => {
  it('shows the first 20 files and a total, not a 100,000-row table, and no rm of 100,000 paths', () => {
    const staging = Array.from({ length: 100_000 }, (_, i) => staged(100_000 + i, 3 * HOUR, GONE, { bytes: 10 }));
    const text = render(evidence({ staging }));
    // Files are shown by name under their directory, printed once.
    const rows = text.split('\n').filter((line) => line.includes(`${KEY}.1`));
    // 20 table rows and their 20 reason lines.
    expect(rows).toHaveLength(40);
    expect(text).toContain('... and 99980 more (99980 dead, 0 alive, 0 unknown; --json lists the first 1000 and the totals)');
    expect(text).toContain('# 100000 orphans: too many to paste; --fix removes them one by one, --json lists the first 1000 paths');
    expect(text).not.toContain('rm --');
    expect(text.length).toBeLessThan(20_000);
  });

  it('attack: a diagnosis that lists only the first files never pastes an rm of some of the orphans', () => {
    const staging = Array.from({ length: 10 }, (_, i) => staged(4000 + i, 3 * HOUR, GONE, { bytes: 10 }));
    const input = evidence({ staging });
    const fold = newStagingFold(3);
    for (const entry of input.staging) foldRunEntry(fold, entry, input.rules, input.nowMs);
    const text = renderDiagnosisHuman(
      {
        diagnosis: classifyFolded(input, fold),
        pipeline: undefined,
        rerun: undefined,
        invocation: ['crashdiag', 'diagnose', KEY],
        width: undefined,
        localHost: 'batch-01',
      },
      plain,
    );
    expect(text).not.toContain('rm --');
    expect(text).toContain('# 10 orphans: too many to paste');
    expect(text).toContain('... and 7 more (7 dead, 0 alive, 0 unknown');
    expect(text).toContain('10 staging files, 10 with a dead writer, 100 B in all');
  });
});
