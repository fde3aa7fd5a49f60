// npm run bench: crashdiag against the floor of what its job costs (listing a
// directory once, starting node) and against the usual ways of doing the same
// job (find, a Python glob script, fast-glob). Every figure is a whole process,
// timed side by side with its baselines in one run: absolute times on a shared
// machine drift, ratios measured together much less. See BENCHMARKS.md.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bigFixtureInfo,
  ensureFixtures,
  FINAL_TEMPLATE,
  FIXTURE_VERSION,
  type Layout,
  layoutUnder,
  rebuildOrphans,
} from './fixtures.js';
import { deadPids } from '../test/support/dead-pids.js';
import { countClean, countDiagnose, countScan } from './in-process.js';
import { type BenchCommand, compareInterleaved, median, runOnce, type Series } from './measure.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const bin = join(root, 'dist', 'crashdiag.cjs');
const baselineDir = join(root, 'bench', 'baselines');
const node = process.execPath;

function envCount(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, not ${raw}`);
  return n;
}

const STARTUP_RUNS = envCount('BENCH_STARTUP_RUNS', 30);
const STARTUP_RSS_RUNS = envCount('BENCH_STARTUP_RSS_RUNS', 5);
const LARGE_RUNS = envCount('BENCH_LARGE_RUNS', 7);
const CLEAN_RUNS = envCount('BENCH_CLEAN_RUNS', 3);
const ONLY = new Set(
  (process.env.BENCH_ONLY ?? 'startup,diagnose,scan,worst,crowd,clean').split(',').map((s) => s.trim()),
);
const fixtureRoot = process.env.BENCH_DIR || join(tmpdir(), `crashdiag-bench-${FIXTURE_VERSION}`);

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
const print = (line = '') => process.stdout.write(`${line}\n`);

function shellQuote(word: string): string {
  return `'${word.replaceAll('\'', '\'\\\'\'')}'`;
}

const expectCount
  = (n: number) =>
    ({ status, stdout }: { status: number | null; stdout: string }) =>
      status === 0 && stdout.trim() === String(n) ? undefined : `expected the count ${n}, got ${stdout.trim()}`;

const expectLines
  = (n: number) =>
    ({ status, stdout }: { status: number | null; stdout: string }) => {
      const lines = stdout.split('\n').filter(Boolean).length;
      return status === 0 && lines === n ? undefined : `expected ${n} lines, got ${lines}`;
    };

function expectJson(status: number, test: (json: Record<string, unknown>) => boolean, what: string) {
  return (run: { status: number | null; stdout: string }) => {
    if (run.status !== status) return `expected exit ${status}`;
    try {
      return test(JSON.parse(run.stdout) as Record<string, unknown>) ? undefined : `expected ${what}`;
    } catch {
      return 'stdout is not JSON';
    }
  };
}

function layoutFlags(out: string, staging: string): string[] {
  return ['--out-dir', out, '--staging-dir', staging, '--final', FINAL_TEMPLATE];
}

interface Row {
  readonly name: string;
  readonly wallMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly rssMiB: number;
}

function rowsOf(series: Map<string, Series>): Row[] {
  return [...series].map(([name, s]) => ({
    name,
    wallMs: median(s.wallMs),
    minMs: Math.min(...s.wallMs),
    maxMs: Math.max(...s.wallMs),
    rssMiB: median(s.rssKiB) / 1024,
  }));
}

function printTable(title: string, rows: readonly Row[], reference: string, runs: string): void {
  const ref = rows.find((r) => r.name === reference);
  print(`### ${title}`);
  print();
  print(runs);
  print();
  print(`| command | wall, median | min-max | peak RSS, median | wall / ${cell(reference)} |`);
  print('|---|---:|---:|---:|---:|');
  for (const r of rows) {
    const ratio = ref ? `${(r.wallMs / ref.wallMs).toFixed(2)}x` : '';
    print(
      `| ${cell(r.name)} | ${ms(r.wallMs)} | ${ms(r.minMs)}-${ms(r.maxMs)} | ${Number.isNaN(r.rssMiB) ? '' : `${r.rssMiB.toFixed(0)} MiB`} | ${ratio} |`,
    );
  }
  print();
}

/** A markdown table cell: command names hold shell pipes. */
function cell(text: string): string {
  return text.replaceAll('|', '\\|');
}

function ms(value: number): string {
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(0)} ms`;
}

interface Goal {
  readonly goal: string;
  readonly measured: string;
  readonly target: string;
  readonly pass: boolean;
}

const goals: Goal[] = [];

const JUDGE_FLOOR = 'node: list, lstat, signal 0';
const GUARDS_FLOOR = 'node: the guards\' calls only';

/**
 * The median of per-run ratios: each run of the candidate over the same
 * round's run of the reference, a cross-check on the ratio of medians that
 * is less moved by drift over the whole group.
 */
function pairedRatio(series: Map<string, Series>, candidate: string, reference: string): number {
  const a = series.get(candidate)?.wallMs ?? [];
  const b = series.get(reference)?.wallMs ?? [];
  return median(a.map((value, i) => value / (b[i] ?? Number.NaN)));
}

function wall(rows: readonly Row[], name: string): number {
  const row = rows.find((r) => r.name === name);
  if (!row) throw new Error(`no figures for ${name}`);
  return row.wallMs;
}

function benchStartup(layout: Layout, scratch: string): void {
  const { out, staging, key } = layout.small;
  const cwd = layout.root;
  const commands: BenchCommand[] = [
    { name: 'node -e 0', argv: [node, '-e', '0'], cwd },
    {
      name: 'crashdiag diagnose --json',
      argv: [node, bin, 'diagnose', key, ...layoutFlags(out, staging), '--json'],
      cwd,
      check: expectJson(0, (j) => j.state === 'DONE', 'state DONE'),
    },
    {
      name: 'crashdiag diagnose (human)',
      argv: [node, bin, 'diagnose', key, ...layoutFlags(out, staging)],
      cwd,
      check: ({ status }) => (status === 0 ? undefined : 'expected exit 0'),
    },
  ];
  const series = compareInterleaved('start-up', commands, scratch, {
    iterations: STARTUP_RUNS,
    rss: 'separate',
    rssIterations: STARTUP_RSS_RUNS,
    log,
  });
  const rows = rowsOf(series);
  printTable(
    'Start-up: diagnose in a two-file layout (an output and its marker)',
    rows,
    'node -e 0',
    `${STARTUP_RUNS} interleaved runs each for wall time, ${STARTUP_RSS_RUNS} more under /usr/bin/time for peak RSS.`,
  );
  const ratio = wall(rows, 'crashdiag diagnose --json') / wall(rows, 'node -e 0');
  goals.push({
    goal: 'two-file diagnose --json, wall vs `node -e 0`',
    measured: `${ratio.toFixed(2)}x (paired ${pairedRatio(series, 'crashdiag diagnose --json', 'node -e 0').toFixed(2)}x)`,
    target: '<= 1.30x',
    pass: ratio <= 1.3,
  });
}

async function benchDiagnose(layout: Layout, scratch: string): Promise<void> {
  const { out, staging, key, entries } = layout.big;
  const cwd = layout.root;
  const commands: BenchCommand[] = [
    {
      name: 'ls -f | grep -c',
      argv: ['sh', '-c', `ls -f ${shellQuote(staging)} | grep -c ${shellQuote(`^${key}\\.[0-9]*\\.csv$`)}`],
      cwd,
      check: expectCount(2),
    },
    {
      name: 'node opendir, readSync',
      argv: [node, join(baselineDir, 'list-readsync.mjs'), staging, `${key}.`, '.csv'],
      cwd,
      check: expectCount(2),
    },
    {
      name: 'node opendir, for await',
      argv: [node, join(baselineDir, 'list-for-await.mjs'), staging, `${key}.`, '.csv'],
      cwd,
      check: expectCount(2),
    },
    {
      name: 'find -maxdepth 1 -name',
      argv: ['find', staging, '-maxdepth', '1', '-name', `${key}.*.csv`],
      cwd,
      check: expectLines(2),
    },
    {
      name: 'python glob.glob + os.stat',
      argv: ['python3', join(baselineDir, 'glob-stat.py'), staging, key],
      cwd,
      check: expectCount(2),
    },
    {
      name: 'fast-glob sync',
      argv: [node, join(baselineDir, 'fast-glob-sync.mjs'), staging, `${key}.*.csv`],
      cwd,
      check: expectCount(2),
    },
    {
      name: 'crashdiag diagnose --json',
      argv: [node, bin, 'diagnose', key, ...layoutFlags(out, staging), '--json'],
      cwd,
      check: expectJson(
        11,
        (j) => j.state === 'D' && Array.isArray(j.orphans) && j.orphans.length === 2,
        'state D with 2 orphans',
      ),
    },
    {
      name: 'crashdiag diagnose (human)',
      argv: [node, bin, 'diagnose', key, ...layoutFlags(out, staging)],
      cwd,
      check: ({ status }) => (status === 11 ? undefined : 'expected exit 11'),
    },
  ];
  const series = compareInterleaved('diagnose, 1M entries', commands, scratch, {
    iterations: LARGE_RUNS,
    rss: 'same-run',
    log,
  });
  const rows = rowsOf(series);
  const floorName
    = wall(rows, 'ls -f | grep -c') <= wall(rows, 'node opendir, readSync')
      ? 'ls -f | grep -c'
      : 'node opendir, readSync';
  printTable(
    `diagnose one key in a ${entries.toLocaleString('en')}-entry staging directory`,
    rows,
    floorName,
    `${LARGE_RUNS} interleaved runs each, every one under /usr/bin/time (wall from hrtime around it). `
    + `The floor is the faster of the two single-pass listings. For a shell pipeline, peak RSS is its largest process's.`,
  );
  const counted = await countDiagnose(out, staging, key);
  print(
    `In-process probe (counting file system): staging listed ${counted.stagingListings}x, `
    + `output directory listed ${counted.outListings}x, ${counted.stats} stat/lstat calls, ${ms(counted.ms)}.`,
  );
  print();
  const ratio = wall(rows, 'crashdiag diagnose --json') / wall(rows, floorName);
  goals.push({
    goal: 'diagnose one key, 1M-entry staging: wall vs the listing floor',
    measured: `${ratio.toFixed(2)}x (paired ${pairedRatio(series, 'crashdiag diagnose --json', floorName).toFixed(2)}x; floor: ${floorName})`,
    target: '<= 1.15x',
    pass: ratio <= 1.15,
  });
  const rss = rows.find((r) => r.name === 'crashdiag diagnose --json')?.rssMiB ?? Number.NaN;
  goals.push({
    goal: 'diagnose one key, 1M-entry staging: peak RSS',
    measured: `${rss.toFixed(0)} MiB`,
    target: '<= 64 MiB',
    pass: rss <= 64,
  });
  goals.push({
    goal: 'diagnose reads the staging directory once',
    measured: `${counted.stagingListings} listing(s)`,
    target: '1',
    pass: counted.stagingListings === 1,
  });
}

async function benchScan(layout: Layout, scratch: string): Promise<void> {
  const { out, staging, keys, entries } = layout.big;
  const cwd = layout.root;
  const stagingFiles = keys * 2;
  const commands: BenchCommand[] = [
    {
      name: 'ls -f | grep -c',
      argv: ['sh', '-c', `ls -f ${shellQuote(staging)} | grep -c ${shellQuote('\\.[0-9][0-9]*\\.csv$')}`],
      cwd,
      check: expectCount(stagingFiles),
    },
    {
      name: 'node opendir, readSync',
      argv: [node, join(baselineDir, 'list-readsync.mjs'), staging, '', '.csv'],
      cwd,
      check: expectCount(stagingFiles),
    },
    {
      name: 'crashdiag scan --json',
      argv: [node, bin, 'scan', ...layoutFlags(out, staging), '--json', '--since', '7d'],
      cwd,
      check: expectJson(
        12,
        (j) => Array.isArray(j.runs) && j.runs.length === keys,
        `${keys} runs, worst D-race (exit 12)`,
      ),
    },
  ];
  const series = compareInterleaved('scan, 1M entries', commands, scratch, {
    iterations: LARGE_RUNS,
    rss: 'same-run',
    log,
  });
  const rows = rowsOf(series);
  const floorName
    = wall(rows, 'ls -f | grep -c') <= wall(rows, 'node opendir, readSync')
      ? 'ls -f | grep -c'
      : 'node opendir, readSync';
  printTable(
    `scan a ${entries.toLocaleString('en')}-entry staging directory holding ${keys.toLocaleString('en')} run keys`,
    rows,
    floorName,
    `${LARGE_RUNS} interleaved runs each, every one under /usr/bin/time. `
    + `${stagingFiles.toLocaleString('en')} staging files (two per key, dead writers); half the keys have a published output and marker.`,
  );
  const counted = await countScan(out, staging);
  print(
    `In-process scan (counting file system): staging listed ${counted.stagingListings}x, output directory `
    + `listed ${counted.outListings}x, ${counted.stats} stat/lstat calls, peak ${counted.peakInFlight} in flight, `
    + `${counted.runs} runs, ${ms(counted.ms)}.`,
  );
  print();
  const ratio = wall(rows, 'crashdiag scan --json') / wall(rows, floorName);
  goals.push({
    goal: 'scan, 1M-entry staging with 2,000 keys: wall vs the listing floor',
    measured: `${ratio.toFixed(2)}x (paired ${pairedRatio(series, 'crashdiag scan --json', floorName).toFixed(2)}x; floor: ${floorName})`,
    target: '<= 1.5x',
    pass: ratio <= 1.5,
  });
  const scanRss = rssOf(rows, 'crashdiag scan --json');
  goals.push({
    goal: 'scan, 1M-entry staging with 2,000 keys: peak RSS',
    measured: `${scanRss.toFixed(0)} MiB`,
    target: '<= 128 MiB',
    pass: scanRss <= 128,
  });
  goals.push({
    goal: 'scan: one pass over each directory',
    measured: `staging ${counted.stagingListings}, output ${counted.outListings} listing(s)`,
    target: '1 each',
    pass: counted.stagingListings === 1 && counted.outListings === 1,
  });
}

/** One lstat per entry, the names counted: the floor for anything that must look at every file. */
function findPrintf(dir: string, check: BenchCommand['check']): BenchCommand {
  return {
    name: 'find -printf | wc -l',
    argv: ['sh', '-c', `find ${shellQuote(dir)} -maxdepth 1 -type f -printf '%s %T@ %f\\n' | wc -l`],
    cwd: layoutRoot,
    check,
  };
}

const rssOf = (rows: readonly Row[], name: string) => rows.find((r) => r.name === name)?.rssMiB ?? Number.NaN;

function benchWorstScan(layout: Layout, scratch: string): void {
  const { out, staging, keys, perKey } = layout.worst;
  const orphans = keys * perKey;
  const cwd = layout.root;
  const commands: BenchCommand[] = [
    findPrintf(staging, expectCount(orphans)),
    {
      name: 'crashdiag scan --json',
      argv: [node, bin, 'scan', ...layoutFlags(out, staging), '--json', '--since', '7d'],
      cwd,
      check: expectJson(
        12,
        (j) =>
          Array.isArray(j.runs)
          && j.runs.length === keys
          && (j.runs as Array<{ orphanCount: number }>).reduce((n, r) => n + r.orphanCount, 0) === orphans,
        `${keys} runs, ${orphans} orphans, worst D-race (exit 12)`,
      ),
    },
  ];
  const series = compareInterleaved('scan, 1M orphans', commands, scratch, { iterations: LARGE_RUNS, rss: 'same-run', log });
  const rows = rowsOf(series);
  printTable(
    `scan the worst case: ${orphans.toLocaleString('en')} dead writers' orphans of ${keys.toLocaleString('en')} run keys`,
    rows,
    'find -printf | wc -l',
    `${LARGE_RUNS} interleaved runs each, every one under /usr/bin/time. Every entry is a matching staging file `
    + `(${perKey} per key, each its own PID, all dead); half the keys have a published output and marker. `
    + 'The floor is find, one lstat per entry.',
  );
  const ratio = wall(rows, 'crashdiag scan --json') / wall(rows, 'find -printf | wc -l');
  goals.push({
    goal: 'scan, 1M orphans of 2,000 keys: wall vs find -printf',
    measured: `${ratio.toFixed(2)}x (paired ${pairedRatio(series, 'crashdiag scan --json', 'find -printf | wc -l').toFixed(2)}x)`,
    target: '<= 1.5x',
    pass: ratio <= 1.5,
  });
  const rss = rssOf(rows, 'crashdiag scan --json');
  goals.push({
    goal: 'scan, 1M orphans of 2,000 keys: peak RSS',
    measured: `${rss.toFixed(0)} MiB`,
    target: '<= 128 MiB',
    pass: rss <= 128,
  });
}

function benchCrowd(layout: Layout, scratch: string): void {
  const { out, staging, key, orphans } = layout.crowd;
  const cwd = layout.root;
  // The worst case for the causes too: the day before published, so each of the
  // 100,000 attempts is a partial write measured against its output.
  const dayBefore = new Date(Date.parse(key) - 86_400_000).toISOString().slice(0, 10);
  const published = join(out, FINAL_TEMPLATE.replace('{date}', dayBefore));
  if (!existsSync(`${published}.success`)) {
    writeFileSync(published, 'id,amount\n'.repeat(1000));
    writeFileSync(`${published}.success`, '');
  }
  const commands: BenchCommand[] = [
    findPrintf(staging, expectCount(orphans)),
    {
      // What the goal leaves room for: the calls no judgement can skip, made from node.
      name: JUDGE_FLOOR,
      argv: [node, join(baselineDir, 'judge-floor.mjs'), staging, key],
      cwd,
      check: ({ status, stdout }) => (status === 0 && stdout.startsWith(`${orphans} `) ? undefined : `expected ${orphans} files`),
    },
    {
      name: 'crashdiag diagnose --json',
      argv: [node, bin, 'diagnose', key, ...layoutFlags(out, staging), '--json'],
      cwd,
      // 100,000 dead writers of one key are 100,000 failed attempts: a crash loop, as it should be.
      // The JSON lists the first 1,000 orphans and counts all of them (orphanTotals).
      check: expectJson(
        15,
        (j) =>
          j.state === 'CRASH-LOOP'
          && (j.orphanTotals as { count?: number } | undefined)?.count === orphans
          && Array.isArray(j.orphans) && j.orphans.length === Math.min(orphans, 1000)
          && (j.causeTotals as { count?: number } | undefined)?.count === orphans
          && Array.isArray(j.causes) && j.causes.length === Math.min(orphans, 1000),
        `state CRASH-LOOP with ${orphans} orphans, each a partial write`,
      ),
    },
    {
      name: 'crashdiag diagnose (human)',
      argv: [node, bin, 'diagnose', key, ...layoutFlags(out, staging)],
      cwd,
      check: ({ status, stdout }) =>
        status === 15 && stdout.split('\n').length < 200 ? undefined : 'expected exit 15 and a short view',
    },
  ];
  const series = compareInterleaved('diagnose, 100k orphans of one key', commands, scratch, {
    iterations: LARGE_RUNS,
    rss: 'same-run',
    log,
  });
  const rows = rowsOf(series);
  printTable(
    `diagnose one key that has ${orphans.toLocaleString('en')} orphans`,
    rows,
    'find -printf | wc -l',
    `${LARGE_RUNS} interleaved runs each, every one under /usr/bin/time. The staging directory holds only `
    + 'that key\'s orphans, each its own dead PID. The human view shows the first 20 and a total, '
    + 'the JSON the first 1,000 and the totals. '
    + `${JUDGE_FLOOR} is the floor of what node must ask: the listing, an lstat and signal 0 per file, nothing judged.`,
  );
  const floor = wall(rows, JUDGE_FLOOR) / wall(rows, 'find -printf | wc -l');
  for (const name of ['crashdiag diagnose --json', 'crashdiag diagnose (human)']) {
    const ratio = wall(rows, name) / wall(rows, 'find -printf | wc -l');
    goals.push({
      goal: `${name.replace('crashdiag ', '')}, one key with 100k orphans: wall vs find -printf`,
      measured: `${ratio.toFixed(2)}x (paired ${pairedRatio(series, name, 'find -printf | wc -l').toFixed(2)}x; `
        + `node's floor for the same calls: ${floor.toFixed(2)}x)`,
      target: '<= 1.5x',
      pass: ratio <= 1.5,
    });
  }
}

// The janitor's worker count (CONCURRENCY in src/core/clean.ts): its calls in
// flight must stay at or under it, whatever the number of candidates.
const CLEAN_CONCURRENCY_BOUND = 16;

async function benchClean(layout: Layout, scratch: string): Promise<void> {
  const { out, staging, keys, perKey } = layout.orphans;
  const orphans = keys * perKey;
  const cwd = layout.root;
  const pids = deadPids(perKey);
  const isCandidate = (name: string) => /^\d{4}-\d{2}-\d{2}\.\d+\.csv$/.test(name);
  const leftInStaging = () => readdirSync(staging).filter(isCandidate).length;
  const commands: BenchCommand[] = [
    {
      name: 'find -name -mmin +1440 -delete',
      argv: ['find', staging, '-maxdepth', '1', '-name', '*.csv', '-mmin', '+1440', '-delete'],
      cwd,
      check: ({ status }) =>
        status === 0 && leftInStaging() === 0 ? undefined : 'expected every orphan deleted',
    },
    {
      // What the goal leaves room for: the guards' own calls, made from node, nothing else.
      name: GUARDS_FLOOR,
      argv: [node, join(baselineDir, 'clean-floor.mjs'), staging, join(scratch, 'floor-audit.jsonl')],
      cwd,
      check: ({ status }) => (status === 0 && leftInStaging() === 0 ? undefined : 'expected every orphan deleted'),
    },
    {
      name: 'crashdiag clean --json',
      // The orphans are hard links made just before each run: their ctime, which
      // the janitor ages them by (an mtime can be set back, a ctime cannot), is
      // now. So the threshold is 1ms, not find's 24h by mtime; the work is the same.
      argv: [node, bin, 'clean', ...layoutFlags(out, staging), '--older-than', '1ms', '--force-short-threshold', '--json'],
      cwd,
      stdoutFile: join(scratch, 'clean.json'),
      check: expectJson(
        0,
        (j) =>
          Array.isArray(j.pipelines)
          && (j.pipelines[0] as { files?: number } | undefined)?.files === orphans
          && leftInStaging() === 0,
        `${orphans} files removed`,
      ),
    },
  ];
  const series = new Map<string, Series>(commands.map((c) => [c.name, { wallMs: [], rssKiB: [] }]));
  const rebuildMs: number[] = [];
  for (let i = 0; i < CLEAN_RUNS; i++) {
    log(`clean, ${orphans.toLocaleString('en')} orphans: run ${i + 1}/${CLEAN_RUNS}`);
    for (const command of i % 2 === 0 ? [...commands].reverse() : commands) {
      const started = performance.now();
      rebuildOrphans(layout, pids);
      rebuildMs.push(performance.now() - started);
      const sample = runOnce(command, scratch, true);
      const s = series.get(command.name) as Series;
      s.wallMs.push(sample.wallMs);
      if (sample.rssKiB !== undefined) s.rssKiB.push(sample.rssKiB);
    }
  }
  const rows = rowsOf(series);
  printTable(
    `clean ${orphans.toLocaleString('en')} orphans of dead writers, older than 24h`,
    rows,
    'find -name -mmin +1440 -delete',
    `${CLEAN_RUNS} interleaved runs each under /usr/bin/time; the directory is rebuilt before every run `
    + `(median ${ms(median(rebuildMs))}, not counted). find deletes by name and age only: it is the floor for `
    + `the unlinks, without crashdiag's checks (template, regular file, dead writer, lock, audit log, fsync). `
    + `${GUARDS_FLOOR} makes only the guards' calls from node: two lstats, signal 0, the unlink, `
    + 'the intents and outcomes appended, one fsync per 1,024 files.',
  );
  rebuildOrphans(layout, pids);
  const counted = await countClean(out, staging, join(scratch, 'audit.jsonl'), isCandidate);
  print(
    `In-process janitor (counting file system): ${counted.candidates.toLocaleString('en')} candidates, `
    + `${counted.removed.toLocaleString('en')} removed, ${counted.statsOnCandidates.toLocaleString('en')} stat/lstat `
    + `calls on them (at most ${counted.maxStatsPerCandidate} per file), staging listed ${counted.stagingListings}x, `
    + `peak ${counted.peakInFlight} file-system calls in flight, ${ms(counted.ms)}.`,
  );
  print();
  const cleanRatio = wall(rows, 'crashdiag clean --json') / wall(rows, 'find -name -mmin +1440 -delete');
  goals.push({
    goal: 'clean of 100k orphans: wall vs find -delete',
    measured: `${cleanRatio.toFixed(2)}x (paired ${pairedRatio(series, 'crashdiag clean --json', 'find -name -mmin +1440 -delete').toFixed(2)}x; `
      + `node's floor for the guards' calls: ${(wall(rows, GUARDS_FLOOR) / wall(rows, 'find -name -mmin +1440 -delete')).toFixed(2)}x)`,
    target: '<= 2x',
    pass: cleanRatio <= 2,
  });
  const cleanRss = rssOf(rows, 'crashdiag clean --json');
  goals.push({
    goal: 'clean of 100k orphans: peak RSS',
    measured: `${cleanRss.toFixed(0)} MiB`,
    target: '<= 128 MiB',
    pass: cleanRss <= 128,
  });
  goals.push({
    goal: 'clean of 100k orphans: stats per candidate',
    measured: `at most ${counted.maxStatsPerCandidate} (${(counted.statsOnCandidates / Math.max(1, counted.candidates)).toFixed(2)} on average)`,
    // One look to judge it, one last look right before its unlink: between the two its intent is fsynced.
    target: '<= 2',
    pass: counted.maxStatsPerCandidate <= 2 && counted.removed === counted.candidates,
  });
  goals.push({
    goal: 'clean of 100k orphans: bounded concurrency',
    measured: `peak ${counted.peakInFlight} calls in flight`,
    target: `<= ${CLEAN_CONCURRENCY_BOUND}`,
    pass: counted.peakInFlight <= CLEAN_CONCURRENCY_BOUND,
  });
}

function filesystemType(path: string): string {
  const result = spawnSync('df', ['--output=fstype', path], { encoding: 'utf8' });
  return result.status === 0 ? (result.stdout.trim().split('\n').pop() ?? 'unknown') : 'unknown';
}

const layout = layoutUnder(fixtureRoot);
const layoutRoot = layout.root;
const benchStarted = performance.now();
ensureFixtures(layout, log);
const info = bigFixtureInfo(layout);
const scratch = join(layout.root, 'scratch');
mkdirSync(scratch, { recursive: true });

print('## crashdiag benchmark');
print();
print(
  `Machine: ${cpus().length} x ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, `
  + `Linux ${release()}, node ${process.version}; fixtures on ${filesystemType(layout.root)} in a temp directory, `
  + `warm page cache. Big staging directory: ${info.entries.toLocaleString('en')} entries, ${info.keys.toLocaleString('en')} run keys.`,
);
print();

if (ONLY.has('startup')) benchStartup(layout, scratch);
if (ONLY.has('diagnose')) await benchDiagnose(layout, scratch);
if (ONLY.has('scan')) await benchScan(layout, scratch);
if (ONLY.has('worst')) benchWorstScan(layout, scratch);
if (ONLY.has('crowd')) benchCrowd(layout, scratch);
if (ONLY.has('clean')) await benchClean(layout, scratch);

print('### Goals');
print();
print('| goal | measured | target | result |');
print('|---|---|---|---|');
for (const g of goals)
  print(`| ${cell(g.goal)} | ${cell(g.measured)} | ${g.target} | ${g.pass ? 'PASS' : 'FAIL'} |`);
print();
print(`Total bench time: ${ms(performance.now() - benchStarted)}.`);
if (goals.some((g) => !g.pass)) process.exitCode = 1;
