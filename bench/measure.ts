import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** One whole process to time: the unit every figure in the bench is about. */
export interface BenchCommand {
  /** Short and stable: the key in result tables. */
  readonly name: string;
  readonly argv: readonly string[];
  readonly cwd: string;
  /** Send stdout to this file instead of a pipe (outputs of many megabytes). */
  readonly stdoutFile?: string;
  /**
   * Checks a run did the work being timed (right count, right state): a timing
   * of an error path would be meaningless. Returns a message when it did not.
   */
  readonly check?: (run: { status: number | null; stdout: string }) => string | undefined;
}

export interface Sample {
  readonly wallMs: number;
  /** Peak resident set size, from /usr/bin/time's %M. */
  readonly rssKiB?: number;
}

const TIME = '/usr/bin/time';

/**
 * Runs one command to completion. Wall time is hrtime around the spawn
 * (/usr/bin/time's %e has only 10 ms resolution); peak RSS, when asked, comes
 * from wrapping the command in /usr/bin/time, which adds about a millisecond
 * to the wall time of whatever it wraps.
 */
export function runOnce(command: BenchCommand, scratch: string, withRss: boolean): Sample {
  const rssFile = join(scratch, 'rss.txt');
  const [file, ...args] = withRss ? [TIME, '-f', '%M', '-o', rssFile, ...command.argv] : [...command.argv];
  if (!file) throw new Error(`${command.name}: empty command`);
  const out = command.stdoutFile === undefined ? 'pipe' : openSync(command.stdoutFile, 'w');
  let wallMs: number;
  let result: ReturnType<typeof spawnSync>;
  try {
    const started = process.hrtime.bigint();
    result = spawnSync(file, args, {
      cwd: command.cwd,
      stdio: ['ignore', out, 'pipe'],
      encoding: 'utf8',
      maxBuffer: 512 * 1024 * 1024,
    });
    wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  } finally {
    if (typeof out === 'number') closeSync(out);
  }
  if (result.error) throw new Error(`${command.name}: ${result.error.message}`);
  const stdout
    = command.stdoutFile === undefined ? String(result.stdout ?? '') : readFileSync(command.stdoutFile, 'utf8');
  const problem = command.check?.({ status: result.status, stdout });
  if (problem) {
    throw new Error(`${command.name}: ${problem}\nexit ${result.status}\nstderr: ${String(result.stderr)}`);
  }
  if (!withRss) return { wallMs };
  // With a non-zero exit, GNU time writes a "Command exited with..." line first.
  const lines = readFileSync(rssFile, 'utf8').trim().split('\n');
  rmSync(rssFile, { force: true });
  const rssKiB = Number(lines[lines.length - 1]);
  if (!Number.isFinite(rssKiB)) throw new Error(`${command.name}: no %M from ${TIME}`);
  return { wallMs, rssKiB };
}

export interface Series {
  readonly wallMs: number[];
  readonly rssKiB: number[];
}

export interface CompareOptions {
  readonly iterations: number;
  /**
   * 'same-run': wall and RSS from one run wrapped in /usr/bin/time (the
   * wrapper's millisecond is noise beside a half-second listing).
   * 'separate': wall from unwrapped runs, RSS from extra wrapped ones, for
   * start-up figures where that millisecond is 2% of the total.
   */
  readonly rss: 'same-run' | 'separate';
  readonly rssIterations?: number;
  readonly log: (line: string) => void;
}

/**
 * Runs every command once per iteration, interleaved, rotating which goes
 * first, so drift on a shared machine (another job, the page cache, CPU
 * frequency) lands on all of them alike. One untimed warm-up run each first.
 */
export function compareInterleaved(
  label: string,
  commands: readonly BenchCommand[],
  scratch: string,
  options: CompareOptions,
): Map<string, Series> {
  const series = new Map<string, Series>(commands.map((c) => [c.name, { wallMs: [], rssKiB: [] }]));
  const rotated = (i: number) => commands.map((_, j) => commands[(i + j) % commands.length] as BenchCommand);
  for (const command of commands) runOnce(command, scratch, false);
  for (let i = 0; i < options.iterations; i++) {
    options.log(`${label}: run ${i + 1}/${options.iterations}`);
    for (const command of rotated(i)) {
      const sample = runOnce(command, scratch, options.rss === 'same-run');
      const s = series.get(command.name) as Series;
      s.wallMs.push(sample.wallMs);
      if (sample.rssKiB !== undefined) s.rssKiB.push(sample.rssKiB);
    }
  }
  if (options.rss === 'separate') {
    const rounds = options.rssIterations ?? 5;
    for (let i = 0; i < rounds; i++) {
      options.log(`${label}: peak RSS run ${i + 1}/${rounds}`);
      for (const command of rotated(i)) {
        const sample = runOnce(command, scratch, true);
        if (sample.rssKiB !== undefined) (series.get(command.name) as Series).rssKiB.push(sample.rssKiB);
      }
    }
  }
  return series;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
