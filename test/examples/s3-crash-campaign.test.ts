// The kill -9 campaign on S3 at a size that fits `npm test` (crashdiag in
// process, as in crash-campaign.test.ts; the jobs are real processes, really killed):
// `npm run crash-campaign -- --s3 --runs N` runs more.
import { afterAll, describe, expect, it } from 'vitest';
import { formatCampaignReport, type KillOutcome, runCampaign } from '../../examples/refunds-pipeline/harness/campaign.js';
import { siteOf } from '../../examples/refunds-pipeline/harness/s3rver.js';
import { closeS3Clients } from '../../examples/refunds-pipeline/harness/s3-workspace.js';
import { useS3Server } from '../support/s3-server.js';
import { builtPipelineInProcessCrashdiag } from './dist.js';

const BUCKET = 'refunds-campaign';
const server = useS3Server([BUCKET]);
afterAll(closeS3Clients);

describe('the kill -9 campaign on S3', () => {
  it('finds a state the S3 journal allows after every run (25, and more until 20 were killed mid-run across 4 steps and 3 states), and --fix --rerun always recovers', async () => {
    const enough = (outcomes: readonly KillOutcome[]) =>
      outcomes.filter((o) => o.killed).length >= 20
      // A campaign whose kills all land in one step would prove little.
      && new Set(outcomes.map((o) => o.lastStep)).size >= 4
      && new Set(outcomes.map((o) => o.state)).size >= 3;
    const result = await runCampaign({
      runs: 25,
      seed: 'npm-test',
      jobs: 4,
      stepDelayMs: 30,
      tools: builtPipelineInProcessCrashdiag(),
      site: siteOf(server(), BUCKET),
      // Kill moments come from a clean run timed first: under a load that changes meanwhile, some land
      // after the job has finished. More kills are run then, rather than fewer proving less.
      until: { enough, maxRuns: 40 },
    });
    const report = formatCampaignReport(result);
    expect(result.failed, report).toBe(0);
    expect(result.outcomes.length).toBeGreaterThanOrEqual(25);
    expect(result.outcomes.filter((o) => o.killed).length, report).toBeGreaterThanOrEqual(20);
    expect(new Set(result.outcomes.map((o) => o.lastStep)).size, report).toBeGreaterThanOrEqual(4);
    expect(new Set(result.outcomes.map((o) => o.state)).size, report).toBeGreaterThanOrEqual(3);
  }, 180_000);
});
