#!/usr/bin/env node
// npm run crash-campaign -- --runs N --seed S [--s3]
// SIGKILLs the example refunds pipeline at random moments and checks that
// crashdiag names a state the step journal allows, and that --fix --rerun
// always ends with the clean run's exact bytes, the marker, and empty staging.
// With --s3, out/ and staging are prefixes on an s3rver started for the run.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatCampaignReport, runCampaign } from '../examples/refunds-pipeline/harness/campaign.js';
import { formatCrashLoopReport, runCrashLoopCampaign } from '../examples/refunds-pipeline/harness/crash-loop-campaign.js';
import { siteOf, startS3Server, type S3TestServer } from '../examples/refunds-pipeline/harness/s3rver.js';
import { closeS3Clients } from '../examples/refunds-pipeline/harness/s3-workspace.js';
import { toolsIn } from '../examples/refunds-pipeline/harness/tools.js';

const USAGE = `Usage: npm run crash-campaign -- [--s3] [--runs N] [--seed S] [--jobs J] [--step-delay-ms MS] [--only I] [--keep-failures]

  --s3               the job's S3 mode: out/ and staging are prefixes on a local
                     s3rver (127.0.0.1, started and removed by the campaign)
  --runs N           kills to perform (default 100)
  --seed S           seed for keys, kill moments and inputs (default 1)
  --jobs J           kills in flight at once (default 2)
  --step-delay-ms MS pacing of the killed runs (default 40)
  --only I           replay kill number I of this seed only
  --keep-failures    keep the workspaces of failed kills (with --s3 the bucket goes
                     with its server; the report lists the objects each failed kill left)
  --loops L          then L sequences of repeated kills of one key: attempts counted,
                     a crash loop never re-run, --retry recovers (default 5; 0: none;
                     local mode only)

Exit codes: 0 every kill passed, 1 a kill failed, 2 usage error.`;

function readOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'runs': { type: 'string', default: '100' },
      'seed': { type: 'string', default: '1' },
      'jobs': { type: 'string', default: '2' },
      'step-delay-ms': { type: 'string', default: '40' },
      'only': { type: 'string' },
      'keep-failures': { type: 'boolean', default: false },
      'loops': { type: 'string', default: '5' },
      's3': { type: 'boolean', default: false },
      'help': { type: 'boolean', short: 'h', default: false },
    },
  });
  const count = (name: string, text: string, min: number) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} "${text}" must be an integer ≥ ${min}`);
    return n;
  };
  return {
    help: values.help,
    runs: count('runs', values.runs, 1),
    seed: values.seed,
    jobs: count('jobs', values.jobs, 1),
    stepDelayMs: count('step-delay-ms', values['step-delay-ms'], 0),
    only: values.only === undefined ? undefined : count('only', values.only, 1),
    keepFailures: values['keep-failures'],
    loops: values.s3 ? 0 : count('loops', values.loops, 0),
    s3: values.s3,
  };
}

const BUCKET = 'refunds-campaign';

async function main(): Promise<number> {
  let options: ReturnType<typeof readOptions>;
  try {
    options = readOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`crash-campaign: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // The pinned SDK warns under node 20 about its releases after January 2027: known, and noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // Bundled to dist-dev/crash-campaign.js, beside the example pipeline; crashdiag is ../dist/crashdiag.cjs.
  const tools = toolsIn(dirname(fileURLToPath(import.meta.url)));
  const progress = process.stderr.isTTY;
  let server: S3TestServer | undefined;
  let result: Awaited<ReturnType<typeof runCampaign>>;
  try {
    server = options.s3 ? await startS3Server([BUCKET], tools.s3rverChild) : undefined;
    result = await runCampaign({
      ...options,
      tools,
      site: server && siteOf(server, BUCKET),
      onProgress: (done, total) => {
        if (progress) process.stderr.write(`\r${done}/${total} kills`);
        if (progress && done === total) process.stderr.write('\r\x1b[K');
      },
    });
  } finally {
    await closeS3Clients();
    // --keep-failures keeps local workspaces; the bucket goes with the server.
    await server?.stop();
  }
  process.stdout.write(formatCampaignReport(result));
  const loops = options.loops > 0 && !options.only
    ? await runCrashLoopCampaign({ sequences: options.loops, seed: options.seed, tools })
    : [];
  if (loops.length > 0) process.stdout.write(`\n${formatCrashLoopReport(loops)}`);
  return result.failed === 0 && loops.every((o) => o.problems.length === 0) ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`crash-campaign: unexpected error\n${(error as Error).stack}\n`);
    process.exitCode = 1;
  },
);
