// The kill -9 campaign at a size that fits `npm test`; the README gives a
// 1,000-kill run's figures and the command to repeat it. The jobs are the
// built pipeline, really SIGKILLed; crashdiag runs in process (its bin, spawned,
// is crash-steps.test.ts's), so a kill costs its job's time, not three node start-ups.
import { describe, expect, it } from 'vitest';
import { formatCampaignReport, type KillOutcome, runCampaign } from '../../examples/refunds-pipeline/harness/campaign.js';
import {
  formatCrashLoopReport,
  runCrashLoopCampaign,
} from '../../examples/refunds-pipeline/harness/crash-loop-campaign.js';
import { builtPipelineInProcessCrashdiag } from './dist.js';

/** Kills across at least 5 journal steps and 4 states: kills that all land in one step would prove little. */
const spreadEnough = (outcomes: readonly KillOutcome[]) =>
  new Set(outcomes.map((o) => o.lastStep)).size >= 5 && new Set(outcomes.map((o) => o.state)).size >= 4;

describe('the kill -9 campaign', () => {
  it('finds a state the journal allows after every one of 50 kills (more if they did not spread), and --fix --rerun always recovers', async () => {
    const result = await runCampaign({
      runs: 50,
      seed: 'npm-test',
      // Four kills in flight: each waits mostly on its paced job, not on the CPU, and each has
      // a workspace of its own, so more at once changes the wall time, not what a kill proves.
      jobs: 4,
      stepDelayMs: 40,
      tools: builtPipelineInProcessCrashdiag(),
      // Under a load that changes after the clean run is timed, kills bunch up; more are run then.
      until: { enough: spreadEnough, maxRuns: 80 },
    });
    const report = formatCampaignReport(result);
    expect(result.failed, report).toBe(0);
    expect(result.outcomes.length).toBeGreaterThanOrEqual(50);
    // A campaign whose kills all land in one step would prove little.
    expect(new Set(result.outcomes.map((o) => o.lastStep)).size, report).toBeGreaterThanOrEqual(5);
    expect(new Set(result.outcomes.map((o) => o.state)).size, report).toBeGreaterThanOrEqual(4);
  }, 180_000);
});

describe('the campaign\'s top-up', () => {
  it('runs more kills, each planned as any other, until enough landed mid-run or the bound is reached', async () => {
    // Never enough: the top-up must stop at its bound, with every run checked.
    const result = await runCampaign({
      runs: 1,
      seed: 'npm-test-top-up',
      jobs: 2,
      stepDelayMs: 10,
      tools: builtPipelineInProcessCrashdiag(),
      until: { enough: () => false, maxRuns: 3 },
    });
    expect(result.failed, formatCampaignReport(result)).toBe(0);
    expect(result.outcomes.map((o) => o.index)).toEqual([1, 2, 3]);
  }, 60_000);
});

describe('repeated kills of one key', () => {
  it('counts every failed attempt (cleaning does not forget), never re-runs a crash loop, and --retry recovers', async () => {
    const outcomes = await runCrashLoopCampaign({ sequences: 2, seed: 'npm-test', tools: builtPipelineInProcessCrashdiag() });
    expect(outcomes.filter((o) => o.problems.length > 0), formatCrashLoopReport(outcomes)).toEqual([]);
    // At least one sequence must reach the loop and try to re-run it.
    const reachesLoop = outcomes.some((o) => {
      let failures = 0;
      return o.actions.some((a) => {
        if (failures >= 3 && a === 'rerun') return true;
        if (a === 'kill' || a === 'rerun') failures++;
        return false;
      });
    });
    expect(reachesLoop, formatCrashLoopReport(outcomes)).toBe(true);
  }, 180_000);
});
