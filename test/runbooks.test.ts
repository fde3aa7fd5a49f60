import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { classifyRun } from '../src/core/classify.js';
import type { RunEvidence } from '../src/core/evidence.js';
import { EXIT_CODES, FIELD_GUIDE, RUNBOOKS, STATES, type State } from '../src/core/states.js';
import {
  evidence,
  FINAL_PATH,
  file,
  GONE,
  HOUR,
  inputFact,
  recovery,
  rerunOutcome,
  MARKER_PATH,
  MINUTE,
  NOW,
  runningSince,
  staged,
} from './support/run-evidence.js';

const ROOT = new URL('../', import.meta.url);
const read = (relative: string) => readFileSync(fileURLToPath(new URL(relative, ROOT)), 'utf8');

const published = { final: file(FINAL_PATH, HOUR), marker: file(MARKER_PATH, HOUR) };
const deadOrphan = staged(91247, 3 * HOUR, GONE);

/** One disk situation per state: what the runbook is written for. */
const CANONICAL: Readonly<Record<State, RunEvidence>> = {
  'DONE': evidence(published),
  'A/B/C': evidence(),
  'D': evidence({ staging: [deadOrphan] }),
  'D-race': evidence({ ...published, staging: [deadOrphan] }),
  'UNPUBLISHED': evidence({ final: file(FINAL_PATH, HOUR) }),
  'RUNNING': evidence({ staging: [staged(91247, MINUTE, runningSince(NOW - HOUR))] }),
  'RERUN-FAILED': evidence({ staging: [deadOrphan], recovery: recovery({ rerun: rerunOutcome(1) }) }),
  'CRASH-LOOP': evidence({
    staging: [deadOrphan, staged(91248, 2 * HOUR, GONE), staged(91249, HOUR, GONE)],
    recovery: recovery(),
  }),
  'BLOCKED': evidence({ staging: [deadOrphan], recovery: recovery({ inputs: [inputFact('missing')] }) }),
  'UNKNOWN': evidence({ marker: file(MARKER_PATH, HOUR) }),
};

const SECTIONS = [
  '## What is on disk',
  '## Confirm by hand',
  '## The safe action',
  '## The risky action, and why',
  '## Check afterwards',
  '## Root causes to fix before re-running',
];

/** The value of a `Name: value` header line near the top of a runbook. */
function header(text: string, name: string): string | undefined {
  const head = text.split('\n## ')[0] ?? '';
  return head
    .split('\n')
    .find((line) => line.startsWith(`${name}: `))
    ?.slice(name.length + 2);
}

describe.each(STATES)('runbook for %s', (state) => {
  const diagnosis = classifyRun(CANONICAL[state]);
  const text = read(RUNBOOKS[state]);

  it('is the runbook the classifier names for its canonical disk', () => {
    expect(diagnosis.state).toBe(state);
    expect(diagnosis.runbook).toBe(RUNBOOKS[state]);
  });

  it('is titled with the state', () => {
    expect(text.split('\n')[0]).toMatch(new RegExp(`^# ${state.replace(/[/-]/g, '\\$&')}: `));
  });

  it('states the same action as the classifier', () => {
    const action = header(text, 'Action');
    expect(action).toBeDefined();
    expect(action?.startsWith(`\`${diagnosis.action}\``)).toBe(true);
  });

  it('states the same exit code as the contract', () => {
    expect(header(text, 'Exit code')).toBe(String(EXIT_CODES[state]));
    expect(diagnosis.exitCode).toBe(EXIT_CODES[state]);
  });

  it('has the six sections, in order', () => {
    const headings = text.split('\n').filter((line) => line.startsWith('## '));
    expect(headings).toEqual(SECTIONS);
  });
});

describe('the UNPUBLISHED runbook', () => {
  it('also names the action the classifier gives when orphans are present', () => {
    const withOrphans = classifyRun(evidence({ final: file(FINAL_PATH, HOUR), staging: [deadOrphan] }));
    expect(withOrphans.state).toBe('UNPUBLISHED');
    expect(withOrphans.action).toBe('clean-then-rerun');
    expect(header(read(RUNBOOKS.UNPUBLISHED), 'Action')).toContain(`\`${withOrphans.action}\``);
  });
});

describe('the field guide', () => {
  const text = read(FIELD_GUIDE);

  it('exists beside the runbooks', () => {
    expect(existsSync(fileURLToPath(new URL(FIELD_GUIDE, ROOT)))).toBe(true);
  });

  it.each(STATES)('lists %s with its action, exit code and runbook', (state) => {
    const row = text.split('\n').find((line) => line.startsWith(`| ${state} |`));
    expect(row).toBeDefined();
    const [, , action, exitCode, runbook] = (row ?? '').split('|').map((cell) => cell.trim());
    expect(action?.startsWith(`\`${classifyRun(CANONICAL[state]).action}\``)).toBe(true);
    expect(exitCode).toBe(String(EXIT_CODES[state]));
    expect(runbook).toBe(`\`${RUNBOOKS[state].replace('runbooks/', '')}\``);
  });
});
