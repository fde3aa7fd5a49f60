// planFix is pure: one row per state, and the rules that hold across them.
import { describe, expect, it } from 'vitest';
import { type Diagnosis, orphanTotalsOf, type StagingFileReport } from '../../src/core/diagnosis.js';
import { planFix, rerunStillNeeded } from '../../src/core/plan.js';
import { type Action, EXIT_CODES, RUNBOOKS, type State } from '../../src/core/states.js';

const KEY = '2026-04-24';
const RERUN = ['node', 'job.js', '--date', '{date}', 'two words'];

function orphan(pid: number, writer: StagingFileReport['writer']): StagingFileReport {
  return {
    path: `/s/_staging/${KEY}.${pid}.csv`,
    pid,
    host: null,
    bytes: pid * 10,
    ageSeconds: 3600,
    writer,
    writerReason: `PID ${pid} is ${writer}`,
    writerJudgedBy: 'pid',
  };
}

function diagnosis(state: State, action: Action, orphans: StagingFileReport[] = []): Diagnosis {
  return {
    run: KEY,
    state,
    action,
    exitCode: EXIT_CODES[state],
    summary: '',
    final: {
      path: `/s/out/report_${KEY}.csv`,
      exists: false,
      bytes: null,
      ageSeconds: null,
      fresh: null,
      belongsToRun: false,
      marker: null,
    },
    orphans,
    orphanTotals: orphanTotalsOf(orphans),
    anomalies: [],
    runbook: RUNBOOKS[state],
  };
}

const DEAD = [orphan(101, 'dead'), orphan(202, 'dead')];
const removalsOf = (orphans: StagingFileReport[]) =>
  orphans.map((o) => ({ path: o.path, bytes: o.bytes, pid: o.pid, writerReason: o.writerReason }));
const ARGV = ['node', 'job.js', '--date', KEY, 'two words'];

describe('planFix', () => {
  it.each([
    // state, action, orphans, removals, rerun
    ['DONE', 'none', [], [], null],
    ['A/B/C', 'rerun', [], [], ARGV],
    ['D', 'clean-then-rerun', DEAD, removalsOf(DEAD), ARGV],
    ['D-race', 'clean-only', DEAD, removalsOf(DEAD), null],
    ['UNPUBLISHED', 'rerun', [], [], ARGV],
    ['UNPUBLISHED', 'clean-then-rerun', DEAD, removalsOf(DEAD), ARGV],
    ['RUNNING', 'wait', [orphan(303, 'alive'), ...DEAD], [], null],
    ['UNKNOWN', 'investigate', DEAD, [], null],
  ] as const)('%s (%s) with a command: removes %j, re-runs %j', (state, action, orphans, removals, rerun) => {
    const plan = planFix(diagnosis(state, action, [...orphans]), RERUN, undefined);
    expect(plan).toEqual({
      run: KEY,
      state,
      removals,
      quarantineDir: undefined,
      rerun,
      rerunMissing: false,
    });
  });

  it.each([
    ['DONE', 'none', false],
    ['A/B/C', 'rerun', true],
    ['D', 'clean-then-rerun', true],
    ['D-race', 'clean-only', false],
    ['UNPUBLISHED', 'rerun', true],
    ['RUNNING', 'wait', false],
    ['UNKNOWN', 'investigate', false],
  ] as const)('%s without a command: rerun null, rerunMissing %s', (state, action, missing) => {
    const plan = planFix(
      diagnosis(state, action, action === 'clean-then-rerun' ? DEAD : []),
      undefined,
      undefined,
    );
    expect(plan.rerun).toBeNull();
    expect(plan.rerunMissing).toBe(missing);
  });

  it('removes only files whose writer is dead, never an alive or unknown one', () => {
    const mixed = [orphan(1, 'dead'), orphan(2, 'unknown'), orphan(3, 'alive'), orphan(4, 'dead')];
    const plan = planFix(diagnosis('D', 'clean-then-rerun', mixed), undefined, undefined);
    expect(plan.removals.map((r) => r.pid)).toEqual([1, 4]);
  });

  it('keeps the quarantine directory only when there is something to move', () => {
    expect(planFix(diagnosis('D', 'clean-then-rerun', DEAD), RERUN, '/q').quarantineDir).toBe('/q');
    expect(planFix(diagnosis('A/B/C', 'rerun'), RERUN, '/q').quarantineDir).toBeUndefined();
    expect(planFix(diagnosis('UNKNOWN', 'investigate', DEAD), RERUN, '/q').quarantineDir).toBeUndefined();
  });

  it('puts the run key in every {date}, each word still one argument', () => {
    const plan = planFix(
      diagnosis('A/B/C', 'rerun'),
      ['job', '--date={date}', '--out', '/o/{date}/{date}.csv', '; rm -rf {date}'],
      undefined,
    );
    expect(plan.rerun).toEqual(['job', `--date=${KEY}`, '--out', `/o/${KEY}/${KEY}.csv`, `; rm -rf ${KEY}`]);
  });

  it('never plans a re-run for D-race, even with orphans and a command', () => {
    const plan = planFix(diagnosis('D-race', 'clean-only', DEAD), RERUN, undefined);
    expect(plan.rerun).toBeNull();
    expect(plan.rerunMissing).toBe(false);
  });
});

describe('rerunStillNeeded: the state found right before the re-run', () => {
  const LIVE = [orphan(303, 'alive')];
  it.each([
    // found before (and planned from), found right before the re-run, orphans then, why not (null: re-run)
    ['A/B/C', 'rerun', 'A/B/C', 'rerun', [], null],
    ['D', 'clean-then-rerun', 'A/B/C', 'rerun', [], null],
    ['UNPUBLISHED', 'rerun', 'UNPUBLISHED', 'rerun', [], null],
    ['UNPUBLISHED', 'clean-then-rerun', 'UNPUBLISHED', 'rerun', [], null],
    ['D', 'clean-then-rerun', 'DONE', 'none', [], /^the run is DONE now: its output and marker were published meanwhile/],
    ['A/B/C', 'rerun', 'DONE', 'none', [], /^the run is DONE now/],
    ['D', 'clean-then-rerun', 'RUNNING', 'wait', LIVE, /^the run is RUNNING now: a writer started meanwhile/],
    ['UNPUBLISHED', 'rerun', 'RUNNING', 'wait', LIVE, /^the run is RUNNING now/],
    ['D', 'clean-then-rerun', 'UNPUBLISHED', 'rerun', [], /an output appeared meanwhile without its marker/],
    ['D', 'clean-then-rerun', 'D', 'clean-then-rerun', DEAD, /^the run is D now, not A\/B\/C/],
    ['D', 'clean-then-rerun', 'D-race', 'clean-only', DEAD, /^the run is D-race now/],
    ['UNPUBLISHED', 'clean-then-rerun', 'UNPUBLISHED', 'clean-then-rerun', DEAD, /with staging files again/],
    ['UNPUBLISHED', 'rerun', 'A/B/C', 'rerun', [], /^the run is A\/B\/C now, not UNPUBLISHED/],
    ['A/B/C', 'rerun', 'UNKNOWN', 'investigate', [], /^the run is UNKNOWN now/],
  ] as const)('%s (%s), then %s (%s): %s', (state, action, nowState, nowAction, nowOrphans, why) => {
    const plan = planFix(diagnosis(state, action, action === 'clean-then-rerun' ? DEAD : []), RERUN, undefined);
    const verdict = rerunStillNeeded(plan, diagnosis(nowState, nowAction, [...nowOrphans]));
    if (why === null) expect(verdict).toBeUndefined();
    else expect(verdict).toMatch(why);
  });

  it('UNPUBLISHED, then UNPUBLISHED with its output replaced meanwhile: no re-run over another run’s output', () => {
    const plan = planFix(diagnosis('UNPUBLISHED', 'clean-then-rerun', DEAD), RERUN, undefined);
    expect(rerunStillNeeded(plan, diagnosis('UNPUBLISHED', 'rerun', []), true)).toMatch(
      /^the run is UNPUBLISHED now, but its output was replaced or rewritten meanwhile/,
    );
    expect(rerunStillNeeded(plan, diagnosis('UNPUBLISHED', 'rerun', []), false)).toBeUndefined();
  });
});
