#!/usr/bin/env node
// The settlement job's process wiring: the only file that reads argv and the
// environment or decides the exit code.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { NO_JOURNAL, openJournal } from './journal.js';
import { HOST_NAME } from './names.js';
import { CRASH_POINTS, type CrashPoint, runPipeline, S3_CRASH_POINTS } from './pipeline.js';
import { isS3Url, openObjectWriter, parseS3Prefix } from './s3-objects.js';

const USAGE = `Usage: refunds-pipeline --date YYYY-MM-DD --input FILE --out-dir DIR --staging-dir DIR [--journal FILE]

Settles one day of refunds: reads the input CSV, totals the settled refunds of
--date per account and currency, writes <staging-dir>/<date>.<pid>.csv, fsyncs
it, renames it to <out-dir>/refunds_settled_<date>.csv and writes the
.success marker beside it. Re-running the same date gives the same bytes.

  --journal FILE   append one fsynced JSON line after each completed step

S3 mode: with --out-dir s3://BUCKET/PREFIX/ and --staging-dir s3://BUCKET/PREFIX/
it puts the staging object <date>.<host>.<pid>.csv, copies it to the final key,
deletes it and puts the marker. Credentials and region come from the AWS SDK's
standard chain, the endpoint from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL.

Environment (for crash tests):
  REFUNDS_CRASH_AT=${CRASH_POINTS.join('|')}
                 (S3: ${S3_CRASH_POINTS.join('|')})
                          SIGKILL this process at that point
  REFUNDS_STEP_DELAY_MS=N  pause N ms after each step (N/2 between write chunks)
  REFUNDS_HOG_MB=N         allocate and touch N MiB after the first write chunk
                          (under a memory limit: a real OOM kill mid-write)

Exit codes: 0 published, 1 unexpected error, 2 usage error.`;

class UsageError extends Error {}

function readOptions(argv: string[], env: NodeJS.ProcessEnv) {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return null;
  const { date, input, journal } = values;
  const outDir = values['out-dir'];
  const stagingDir = values['staging-dir'];
  if (!date || !input || !outDir || !stagingDir) {
    throw new UsageError('--date, --input, --out-dir and --staging-dir are all required');
  }
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new UsageError(`--date "${date}" is not YYYY-MM-DD`);
  const s3 = readS3Mode(outDir, stagingDir);

  const crashAt = env.REFUNDS_CRASH_AT || undefined;
  const points: readonly string[] = s3 ? S3_CRASH_POINTS : CRASH_POINTS;
  if (crashAt !== undefined && !points.includes(crashAt)) {
    // A typo must not silently turn a crash test into a clean run.
    throw new UsageError(`REFUNDS_CRASH_AT="${crashAt}" is not one of ${points.join(', ')}`);
  }
  const delay = env.REFUNDS_STEP_DELAY_MS ? Number(env.REFUNDS_STEP_DELAY_MS) : 0;
  if (!Number.isFinite(delay) || delay < 0) {
    throw new UsageError(
      `REFUNDS_STEP_DELAY_MS="${env.REFUNDS_STEP_DELAY_MS}" is not a number of milliseconds`,
    );
  }
  const hogMb = env.REFUNDS_HOG_MB ? Number(env.REFUNDS_HOG_MB) : 0;
  if (!Number.isInteger(hogMb) || hogMb < 0)
    throw new UsageError(`REFUNDS_HOG_MB="${env.REFUNDS_HOG_MB}" is not a whole number of MiB`);
  if (s3 && hogMb > 0) throw new UsageError('REFUNDS_HOG_MB works in local mode only (it hogs between write chunks)');
  const crash = crashAt as CrashPoint | undefined;
  return { date, input, outDir, stagingDir, journal, crashAt: crash, delay, hogMb, s3 };
}

/** Both directories on S3, or neither: a job half on each is not what this example shows. */
function readS3Mode(outDir: string, stagingDir: string): boolean {
  const s3 = isS3Url(outDir);
  if (s3 !== isS3Url(stagingDir)) {
    throw new UsageError('--out-dir and --staging-dir must both be s3:// URLs, or both local directories');
  }
  if (!s3) return false;
  for (const [flag, url] of [['--out-dir', outDir], ['--staging-dir', stagingDir]]) {
    try {
      parseS3Prefix(url as string);
    } catch (error) {
      throw new UsageError(`${flag}: ${(error as Error).message}`);
    }
  }
  // The staging key carries the host, and crashdiag must parse it back out.
  if (!HOST_NAME.test(hostname())) {
    throw new UsageError(`the host name "${hostname()}" cannot go into a staging key`);
  }
  return true;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      'date': { type: 'string' },
      'input': { type: 'string' },
      'out-dir': { type: 'string' },
      'staging-dir': { type: 'string' },
      'journal': { type: 'string' },
      'help': { type: 'boolean', short: 'h' },
    },
  });
}

async function main(): Promise<number> {
  let options: ReturnType<typeof readOptions>;
  try {
    options = readOptions(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`refunds-pipeline: ${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options === null) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const journal = options.journal ? await openJournal(options.journal, process.pid) : NO_JOURNAL;
  try {
    const result = await runPipeline({
      runDate: options.date,
      inputPath: options.input,
      outDir: options.outDir,
      stagingDir: options.stagingDir,
      pid: process.pid,
      host: hostname(),
      openObjects: options.s3 ? () => openObjectWriter(process.env) : undefined,
      journal,
      crashAt: options.crashAt,
      stepDelayMs: options.delay,
      hogMb: options.hogMb,
      crash: () => {
        process.kill(process.pid, 'SIGKILL');
        // SIGKILL to oneself is delivered before kill(2) returns; never reached.
        throw new Error('SIGKILL did not stop the process');
      },
    });
    process.stdout.write(
      `refunds-pipeline: published ${result.finalPath} (${result.settlements} settlements, ${result.bytes} bytes)\n`,
    );
    return 0;
  } finally {
    await journal.close();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const e = error as NodeJS.ErrnoException;
    // Known file-system and S3 failures (an SDK service error carries $metadata)
    // read as one sentence; anything else keeps its stack.
    process.stderr.write(
      e.code && e.message
        ? `refunds-pipeline: ${e.message}\n`
        : typeof e === 'object' && '$metadata' in e
          ? `refunds-pipeline: S3 ${e.name}: ${e.message}\n`
          : `refunds-pipeline: unexpected error\n${e.stack}\n`,
    );
    process.exitCode = 1;
  },
);
