import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { promises as fsp } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Volume } from 'memfs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import { run } from '../../src/cli/run.js';
import type { FileSystem } from '../../src/core/fs.js';
import type { ProcessTable } from '../../src/core/process-table.js';
import { type Finished, runBin } from '../support/built-bin.js';
import { crashdiagInProcess } from '../support/in-process.js';
import { exists } from '../support/disk.js';
import { treeOf } from '../support/file-tree.js';
import { type LiveProcess, startLiveProcess } from '../support/live-process.js';
import { realLockRuntime } from '../support/lock-runtime.js';
import { installedRunbooks } from '../../src/bin/runbook-files.js';
import { removeTempDir } from '../support/temp-dir.js';
import { makeTempLayout } from '../support/temp-layout.js';
import { setTimes } from '../support/ctime.js';

/** `npm test` builds before vitest runs: the tests marked so run the bundle a user gets. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'dist', 'crashdiag.cjs');

const KEY = '2026-04-24';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
// The --now of these diagnoses: a month after the real clock, to the second.
// A file's age counts from its last change, and no one can set a ctime back:
// files are aged by an mtime between the real now (their ctime) and NOW, so
// mtime, not ctime, is their last change, as on a disk written at that mtime.
const NOW = Math.floor((Date.now() + 30 * DAY) / 1000) * 1000;
const NOW_ISO = new Date(NOW).toISOString();

/** crashdiag ARGS through run(argv, io), on the real disk and process table: the bin's logic without a spawn. */
function crashdiag(args: readonly string[], cwd: string): Promise<Finished> {
  return crashdiagInProcess(args, cwd);
}

/** Runs the built bin in its own process, as a user would: NO_COLOR=1, stdout a pipe. */
function crashdiagBin(args: readonly string[], cwd: string): Promise<Finished> {
  return runBin(BIN, args, { cwd });
}

interface DiagnosisJson {
  schemaVersion: number;
  run: string;
  state: string;
  action: string;
  exitCode: number;
  summary: string;
  final: {
    path: string;
    exists: boolean;
    bytes: number | null;
    ageSeconds: number | null;
    fresh: boolean | null;
    marker: { path: string; exists: boolean } | null;
  };
  orphans: Array<{
    path: string;
    pid: number;
    host: string | null;
    bytes: number;
    ageSeconds: number;
    writer: string;
    writerReason: string;
  }>;
  anomalies: Array<{ path: string; reason: string }>;
  runbook: string;
}

let root: string;
let out: string;
let staging: string;
const liveWriters: LiveProcess[] = [];

beforeEach(async () => {
  ({ root, outDir: out, stagingDir: staging } = await makeTempLayout('crashdiag-'));
});

afterEach(async () => {
  for (const writer of liveWriters.splice(0)) await writer.stop();
  await removeTempDir(root);
});

const finalPath = () => join(out, `refunds_settled_${KEY}.csv`);
const markerPath = () => `${finalPath()}.success`;
const stagedPath = (pid: number | string) => join(staging, `${KEY}.${pid}.csv`);

/** Writes a file last modified `ageMs` before NOW, or now by the real clock when ageMs is undefined. */
async function put(path: string, content = 'id,amount\n1,2\n', ageMs?: number): Promise<string> {
  await fsp.writeFile(path, content);
  if (ageMs !== undefined) {
    const mtime = new Date(NOW - ageMs);
    await fsp.utimes(path, mtime, mtime);
  }
  return path;
}

/** A process that will outlive the test unless killed; the test owns its PID. */
async function liveProcess(): Promise<number> {
  const writer = await startLiveProcess();
  liveWriters.push(writer);
  return writer.pid;
}

/** The PID of a real process that was SIGKILLed and reaped: what an OOM kill leaves behind. */
async function killedProcessPid(): Promise<number> {
  // sleep, not node: any real process will do, and a node start-up costs ten times as much.
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  await once(child, 'spawn');
  const pid = child.pid as number;
  child.kill('SIGKILL');
  const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
  expect(signal).toBe('SIGKILL');
  return pid;
}

// Each flag once: the layout is the whole command line, never amended by repeating a flag.
const layout = (final = 'refunds_settled_{date}.csv') => [
  '--out-dir',
  out,
  '--staging-dir',
  staging,
  '--final',
  final,
];

async function diagnoseJson(extra: readonly string[] = [], final?: string) {
  const result = await crashdiag(['diagnose', KEY, ...layout(final), '--json', ...extra], root);
  expect(result.stderr).toBe('');
  const json = JSON.parse(result.stdout) as DiagnosisJson;
  expect(result.code).toBe(json.exitCode);
  return { ...result, json };
}

describe('crashdiag diagnose --json', () => {
  it('DONE (0): the output and its marker, nothing in staging', async () => {
    await put(finalPath(), 'id,amount\n1,2\n', 90 * MINUTE);
    await put(markerPath(), '', 89 * MINUTE);
    await put(join(staging, `${KEY}.backup.csv`), 'a look-alike', 10 * DAY);
    const { code, json } = await diagnoseJson(['--now', NOW_ISO]);
    expect(code).toBe(0);
    expect(json).toEqual({
      schemaVersion: 1,
      run: KEY,
      state: 'DONE',
      action: 'none',
      exitCode: 0,
      summary: expect.stringContaining('published'),
      final: {
        path: finalPath(),
        exists: true,
        bytes: 14,
        ageSeconds: 5400,
        fresh: true,
        belongsToRun: true,
        marker: { path: markerPath(), exists: true, ageSeconds: 89 * 60 },
      },
      orphans: [],
      orphanTotals: { count: 0, listed: 0, bytes: 0, dead: 0, alive: 0, unknown: 0 },
      anomalies: [],
      anomalyTotals: { count: 0, listed: 0 },
      runbook: join(ROOT, 'runbooks/DONE.md'),
      attempts: { count: 0, max: 3, list: [], listed: 0 },
      inputs: [],
      retryAfterSeconds: null,
      causes: [],
      causeTotals: { count: 0, listed: 0 },
      causeNotes: [],
    });
    expect(Object.keys(json)).toEqual([
      'schemaVersion',
      'run',
      'state',
      'action',
      'exitCode',
      'summary',
      'final',
      'orphans',
      'orphanTotals',
      'anomalies',
      'anomalyTotals',
      'runbook',
      'attempts',
      'inputs',
      'retryAfterSeconds',
      'causes',
      'causeTotals',
      'causeNotes',
    ]);
  });

  it('DONE (0) for a 50-day-old backfill: a keyed output belongs to its run whatever its age', async () => {
    await put(finalPath(), 'x', 50 * DAY);
    await put(markerPath(), '', 50 * DAY);
    const { code, json } = await diagnoseJson(['--now', NOW_ISO]);
    expect(code).toBe(0);
    expect(json.state).toBe('DONE');
    expect(json.final).toMatchObject({ ageSeconds: 50 * 86_400, fresh: false });
  });

  it('DONE (0) with --no-marker: no marker is expected or reported', async () => {
    await put(finalPath(), 'x', HOUR);
    const { code, json } = await diagnoseJson(['--no-marker', '--now', NOW_ISO]);
    expect(code).toBe(0);
    expect(json.final.marker).toBeNull();
  });

  it('A/B/C (10): nothing on disk for the run key', async () => {
    await put(join(out, 'refunds_settled_2026-04-23.csv'), 'yesterday', DAY);
    await put(stagedPath(999).replace(KEY, '2026-04-23'), 'yesterday', DAY);
    const { code, json } = await diagnoseJson(['--now', NOW_ISO]);
    expect(code).toBe(10);
    expect(json).toMatchObject({
      state: 'A/B/C',
      action: 'rerun',
      exitCode: 10,
      final: { exists: false, bytes: null, ageSeconds: null, fresh: null },
      orphans: [],
      anomalies: [],
      runbook: join(ROOT, 'runbooks/ABC.md'),
    });
  });

  it('D (11): the staging file of a SIGKILLed writer, nothing published', async () => {
    const pid = await killedProcessPid();
    await put(stagedPath(pid), 'id,amount\n1,', 3 * MINUTE);
    const { code, json } = await diagnoseJson(['--now', NOW_ISO]);
    expect(code).toBe(11);
    expect(json).toMatchObject({ state: 'D', action: 'clean-then-rerun', runbook: join(ROOT, 'runbooks/D.md') });
    expect(json.orphans).toEqual([
      {
        path: stagedPath(pid),
        pid,
        host: null,
        bytes: 12,
        ageSeconds: 180,
        writer: 'dead',
        writerReason: `PID ${pid} is not running`,
        writerJudgedBy: 'pid',
      },
    ]);
    expect(await exists(stagedPath(pid))).toBe(true);
  });

  it('attack (issue 9.1): a live writer whose file’s mtime was set a day back is RUNNING, and --fix deletes nothing', async () => {
    const pid = await liveProcess();
    // What cp -p, curl -R, rsync -t, tar x and wget -N do to a file their process still writes.
    const path = stagedPath(pid);
    await fsp.writeFile(path, 'partial');
    const dayAgo = new Date(Date.now() - DAY);
    await fsp.utimes(path, dayAgo, dayAgo);
    const before = await treeOf(root);
    const { code, json } = await crashdiag(['diagnose', KEY, ...layout(), '--json'], root).then((r) => ({
      code: r.code,
      json: JSON.parse(r.stdout) as DiagnosisJson,
    }));
    expect(code).toBe(20);
    expect(json.orphans[0]).toMatchObject({
      pid,
      writer: 'alive',
      writerReason: expect.stringMatching(
        new RegExp(`^PID ${pid} is running and started .* before the file's last change \\(mtime 1d ago, ctime \\d+s ago\\)`),
      ),
    });
    const fixed = await crashdiag(['diagnose', KEY, ...layout(), '--fix', '--rerun', 'true {date}'], root);
    expect(fixed.code).toBe(20);
    expect(await treeOf(root)).toEqual(before);
  });

  it('D-race (12): a published output beside a dead writer’s orphan', async () => {
    const pid = await killedProcessPid();
    await put(finalPath(), 'x', HOUR);
    await put(markerPath(), '', HOUR);
    await put(stagedPath(pid), 'partial', 2 * HOUR);
    const { code, json } = await diagnoseJson(['--now', NOW_ISO]);
    expect(code).toBe(12);
    expect(json).toMatchObject({ state: 'D-race', action: 'clean-only', runbook: join(ROOT, 'runbooks/D-race.md') });
    expect(json.orphans.map((o) => o.writer)).toEqual(['dead']);
  });

  it('UNPUBLISHED (13): the output without its marker', async () => {
    await put(finalPath(), 'x', HOUR);
    const { code, json } = await diagnoseJson(['--now', NOW_ISO]);
    expect(code).toBe(13);
    expect(json).toMatchObject({
      state: 'UNPUBLISHED',
      action: 'rerun',
      final: { exists: true, marker: { path: markerPath(), exists: false } },
      runbook: join(ROOT, 'runbooks/UNPUBLISHED.md'),
    });
  });

  it('UNPUBLISHED (13) with dead orphans: clean, then re-run', async () => {
    const pid = await killedProcessPid();
    await put(finalPath(), 'x', HOUR);
    await put(stagedPath(pid), 'partial', 2 * HOUR);
    const { code, json } = await diagnoseJson(['--now', NOW_ISO]);
    expect(code).toBe(13);
    expect(json).toMatchObject({ state: 'UNPUBLISHED', action: 'clean-then-rerun' });
  });

  it('RUNNING (20): a live writer holds the staging file', async () => {
    const pid = await liveProcess();
    await put(stagedPath(pid), 'partial');
    const { code, json } = await diagnoseJson();
    expect(code).toBe(20);
    expect(json).toMatchObject({ state: 'RUNNING', action: 'wait', runbook: join(ROOT, 'runbooks/RUNNING.md') });
    expect(json.orphans).toEqual([
      expect.objectContaining({
        path: stagedPath(pid),
        pid,
        writer: 'alive',
        writerReason: expect.stringMatching(
          new RegExp(`^PID ${pid} is running and started (\\d+s before|within 1s of) the file's last change \\(\\d+s ago\\)$`),
        ),
      }),
    ]);
  });

  it('RUNNING (20) wins over a published output and a dead orphan', async () => {
    const live = await liveProcess();
    const dead = await killedProcessPid();
    await put(finalPath(), 'x', HOUR);
    await put(markerPath(), '', HOUR);
    await put(stagedPath(dead), 'partial', 2 * HOUR);
    await put(stagedPath(live), 'partial');
    const { code, json } = await diagnoseJson();
    expect(code).toBe(20);
    expect(json.state).toBe('RUNNING');
  });

  it('RUNNING (20) wins over a marker without its output', async () => {
    const live = await liveProcess();
    await put(markerPath(), '', HOUR);
    await put(stagedPath(live), 'partial');
    const { code, json } = await diagnoseJson();
    expect(code).toBe(20);
    expect(json.anomalies).toEqual([
      { path: markerPath(), reason: expect.stringMatching(/without its output/) },
    ]);
  });

  it('UNKNOWN (30): a success marker without its output', async () => {
    await put(markerPath(), '', HOUR);
    const { code, json } = await diagnoseJson(['--now', NOW_ISO]);
    expect(code).toBe(30);
    expect(json).toMatchObject({ state: 'UNKNOWN', action: 'investigate', runbook: join(ROOT, 'runbooks/UNKNOWN.md') });
    expect(json.anomalies).toEqual([
      { path: markerPath(), reason: expect.stringMatching(/a success marker without its output/) },
    ]);
  });

  it('UNKNOWN (30): a symlink named like a staging file is reported, not followed', async () => {
    const target = await put(join(root, 'elsewhere.csv'), 'x'.repeat(5000));
    await fsp.symlink(target, stagedPath(4242));
    const { code, json } = await diagnoseJson(['--now', NOW_ISO]);
    expect(code).toBe(30);
    expect(json.orphans).toEqual([]);
    expect(json.anomalies).toEqual([{ path: stagedPath(4242), reason: expect.stringMatching(/a symlink/) }]);
    expect(await exists(target)).toBe(true);
  });

  it('UNKNOWN (30): a directory where the output should be', async () => {
    await fsp.mkdir(finalPath());
    await put(markerPath(), '', HOUR);
    const { code, json } = await diagnoseJson(['--now', NOW_ISO]);
    expect(code).toBe(30);
    expect(json.anomalies).toEqual([{ path: finalPath(), reason: expect.stringMatching(/a directory/) }]);
  });

  describe('--no-pid-check and foreign hosts: judged by age', () => {
    it('a live process’s file untouched for over --stale-after counts as dead', async () => {
      const pid = await liveProcess();
      await put(stagedPath(pid), 'partial', 20 * MINUTE);
      const { code, json } = await diagnoseJson(['--no-pid-check', '--now', NOW_ISO]);
      expect(code).toBe(11);
      expect(json.orphans[0]).toMatchObject({
        writer: 'dead',
        writerReason: expect.stringMatching(/--no-pid-check.*untouched for 20m, over 15m/),
      });
    });

    it('a dead process’s file modified within --stale-after counts as alive', async () => {
      const pid = await killedProcessPid();
      await put(stagedPath(pid), 'partial', 5 * MINUTE);
      const { code, json } = await diagnoseJson(['--no-pid-check', '--now', NOW_ISO]);
      expect(code).toBe(20);
      expect(json.orphans[0]?.writer).toBe('alive');
    });

    it('--stale-after moves the line', async () => {
      await put(stagedPath(4242), 'partial', 20 * MINUTE);
      const { code } = await diagnoseJson(['--no-pid-check', '--stale-after', '30m', '--now', NOW_ISO]);
      expect(code).toBe(20);
    });

    it('a file written on another host is judged by age, not by this host’s PIDs', async () => {
      const pid = await liveProcess();
      const path = join(staging, `${KEY}.some-other-host.${pid}.csv`);
      await put(path, 'partial', HOUR);
      const { code, json } = await diagnoseJson(['--staging', '{date}.{host}.{pid}.csv', '--now', NOW_ISO]);
      expect(code).toBe(11);
      expect(json.orphans).toEqual([
        expect.objectContaining({
          path,
          pid,
          host: 'some-other-host',
          writer: 'dead',
          writerReason: expect.stringMatching(/written on host some-other-host, not this one/),
        }),
      ]);
    });

    it('a file modified far in the future cannot be judged: UNKNOWN (30)', async () => {
      await put(stagedPath(4242), 'partial', -HOUR);
      const { code, json } = await diagnoseJson(['--no-pid-check', '--now', NOW_ISO]);
      expect(code).toBe(30);
      expect(json.orphans[0]?.writer).toBe('unknown');
      expect(json.anomalies.map((a) => a.path)).toEqual([stagedPath(4242)]);
    });
  });

  describe('a fixed output name (no {date} in --final)', () => {
    const fixed = () => ['--now', NOW_ISO];
    const fixedJson = (extra: readonly string[]) => diagnoseJson(extra, 'latest.csv');

    it('older than --fresh-within belongs to an earlier run: A/B/C (10)', async () => {
      await put(join(out, 'latest.csv'), 'x', 7 * HOUR);
      await put(join(out, 'latest.csv.success'), '', 7 * HOUR);
      const { code, json } = await fixedJson(fixed());
      expect(code).toBe(10);
      expect(json.final).toMatchObject({ exists: true, fresh: false, ageSeconds: 7 * 3600 });
    });

    it('--fresh-within 8h makes the same output this run’s: DONE (0)', async () => {
      await put(join(out, 'latest.csv'), 'x', 7 * HOUR);
      await put(join(out, 'latest.csv.success'), '', 7 * HOUR);
      const { code } = await fixedJson([...fixed(), '--fresh-within', '8h']);
      expect(code).toBe(0);
    });

    it('stale, with a dead orphan: D (11); fresh, with a dead orphan: D-race (12)', async () => {
      await put(join(out, 'latest.csv'), 'x', 7 * HOUR);
      await put(join(out, 'latest.csv.success'), '', 7 * HOUR);
      await put(stagedPath(4242), 'partial', DAY);
      expect((await fixedJson([...fixed(), '--no-pid-check'])).code).toBe(11);
      expect((await fixedJson([...fixed(), '--no-pid-check', '--fresh-within', '2d'])).code).toBe(12);
    });

    it('a marker older than the output was left by an earlier publish: UNPUBLISHED (13)', async () => {
      await put(join(out, 'latest.csv'), 'x', HOUR);
      await put(join(out, 'latest.csv.success'), '', DAY);
      const { code, json } = await fixedJson(fixed());
      expect(code).toBe(13);
      expect(json.summary).toMatch(/older than the output/);
    });
  });

  it('lists only this key’s staging files, as absolute paths sorted by path', async () => {
    for (const pid of [300, 1000, 20]) await put(stagedPath(pid), 'partial', DAY);
    for (const name of [
      `${KEY}0.1.csv`,
      `${KEY}.backup.csv`,
      `${KEY}.12x.csv`,
      `2026-04-23.5.csv`,
      `${KEY}.007.csv`,
    ]) {
      await put(join(staging, name), 'not ours', DAY);
    }
    // Three dead writers are a crash loop by default; this is about which files are listed.
    const { code, json } = await diagnoseJson(['--no-pid-check', '--max-attempts', '0', '--now', NOW_ISO]);
    expect(code).toBe(11);
    const paths = json.orphans.map((o) => o.path);
    expect(paths).toEqual([stagedPath(1000), stagedPath(20), stagedPath(300)]);
    expect(paths).toEqual([...paths].sort());
    for (const path of [...paths, json.final.path, json.final.marker?.path ?? ''])
      expect(isAbsolute(path)).toBe(true);
  });

  it('measures every age against --now, so the same disk gives the same bytes', async () => {
    await put(finalPath(), 'x', 90 * MINUTE);
    await put(stagedPath(4242), 'partial', 25 * HOUR);
    const first = await diagnoseJson(['--no-pid-check', '--now', NOW_ISO]);
    const second = await diagnoseJson(['--no-pid-check', '--now', NOW_ISO]);
    expect(second.stdout).toBe(first.stdout);
    expect(first.json.final.ageSeconds).toBe(5400);
    expect(first.json.orphans[0]?.ageSeconds).toBe(25 * 3600);
    const later = await diagnoseJson(['--no-pid-check', '--now', new Date(NOW + HOUR).toISOString()]);
    expect(later.json.final.ageSeconds).toBe(5400 + 3600);
  });

  it('resolves relative directories against the working directory', async () => {
    await put(finalPath(), 'x', HOUR);
    await put(markerPath(), '', HOUR);
    const result = await crashdiag(
      [
        'diagnose',
        KEY,
        '--out-dir',
        'out',
        '--staging-dir',
        '_staging',
        '--final',
        'refunds_settled_{date}.csv',
        '--json',
      ],
      root,
    );
    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as DiagnosisJson).final.path).toBe(finalPath());
  });
});

describe('crashdiag diagnose (human view)', () => {
  it('names the state, the safe action with the exact rm command, and the runbook, without colour', async () => {
    const pid = await killedProcessPid();
    await put(stagedPath(pid), 'partial', 3 * MINUTE);
    // The built bin: colour off for NO_COLOR and a pipe, as a user's shell would run it.
    const { code, stdout, stderr } = await crashdiagBin(['diagnose', KEY, ...layout(), '--now', NOW_ISO], root);
    expect(code).toBe(11);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/^\s+D\s+/m);
    expect(stdout).toContain('exit 11');
    expect(stdout).toContain('Safe action:');
    expect(stdout).toContain(`rm -- ${stagedPath(pid)}`);
    expect(stdout).toContain(`PID ${pid} dead`);
    expect(stdout).toContain('runbook: crashdiag runbook D');
    expect(stdout).not.toContain('\u001b[');
    expect(await exists(stagedPath(pid))).toBe(true);
  });

  it('for a live writer, says to wait and shows how to look at the process', async () => {
    const pid = await liveProcess();
    await put(stagedPath(pid), 'partial');
    const { code, stdout } = await crashdiag(['diagnose', KEY, ...layout()], root);
    expect(code).toBe(20);
    expect(stdout).toContain('RUNNING');
    expect(stdout).toContain(`ps -o pid,lstart,etime,args -p ${pid}`);
    expect(stdout).toContain('runbook: crashdiag runbook RUNNING');
    expect(stdout).not.toContain('rm --');
  });

  it('for DONE, says there is nothing to do', async () => {
    await put(finalPath(), 'x', HOUR);
    await put(markerPath(), '', HOUR);
    const { code, stdout } = await crashdiag(['diagnose', KEY, ...layout(), '--now', NOW_ISO], root);
    expect(code).toBe(0);
    expect(stdout).toContain('DONE');
    expect(stdout).toContain('Safe action: Nothing to do.');
    expect(stdout).toContain('runbook: crashdiag runbook DONE');
  });

  it('for UNKNOWN, lists the findings', async () => {
    await put(markerPath(), '', HOUR);
    const { code, stdout } = await crashdiag(['diagnose', KEY, ...layout(), '--now', NOW_ISO], root);
    expect(code).toBe(30);
    expect(stdout).toContain('Findings');
    expect(stdout).toContain(`output dir:  ${out}`);
    expect(stdout).toContain(`  refunds_settled_${KEY}.csv.success: a success marker without its output`);
  });
});

describe('usage and configuration errors: exit 2, one sentence, nothing touched', () => {
  const CASES: ReadonlyArray<{
    name: string;
    args: () => string[];
    setup?: () => Promise<void>;
    message: RegExp;
  }> = [
    {
      name: 'a run key that leaves the directory',
      args: () => ['diagnose', '../x', ...layout()],
      message: /The run key "\.\.\/x" contains a path separator\./,
    },
    {
      name: 'a run key with a shell metacharacter',
      args: () => ['diagnose', '2026-04-24;rm', ...layout()],
      message: /shell metacharacter/,
    },
    {
      name: 'no --out-dir',
      args: () => ['diagnose', KEY, '--staging-dir', staging, '--final', 'r_{date}.csv'],
      message: /Missing --out-dir/,
    },
    {
      name: 'an output directory that does not exist',
      args: () => [
        'diagnose',
        KEY,
        '--out-dir',
        join(root, 'nope'),
        '--staging-dir',
        staging,
        '--final',
        'r_{date}.csv',
      ],
      message: /The output directory .*\/nope does not exist\./,
    },
    {
      name: 'a staging directory that does not exist',
      args: () => [
        'diagnose',
        KEY,
        '--out-dir',
        out,
        '--staging-dir',
        join(root, 'nope'),
        '--final',
        'r_{date}.csv',
      ],
      message: /The staging directory .*\/nope does not exist\./,
    },
    {
      name: 'a staging template without {pid}',
      args: () => ['diagnose', KEY, ...layout(), '--staging', '{date}.csv'],
      message: /--staging "\{date\}\.csv" must contain \{pid\} exactly once\./,
    },
    {
      name: 'an output template with a slash',
      args: () => ['diagnose', KEY, '--out-dir', out, '--staging-dir', staging, '--final', 'x/{date}.csv'],
      message: /--final "x\/\{date\}\.csv" contains a path separator/,
    },
    {
      name: 'a bad duration',
      args: () => ['diagnose', KEY, ...layout(), '--fresh-within', '6hours'],
      message: /--fresh-within "6hours" is not a duration\./,
    },
    {
      name: 'a flag given twice',
      args: () => ['diagnose', KEY, ...layout(), '--final', 'latest.csv'],
      message: /--final is given more than once; give it once\./,
    },
    {
      name: '--now on a day that does not exist',
      args: () => ['diagnose', KEY, ...layout(), '--now', '2026-02-30'],
      message: /--now "2026-02-30" is not an ISO-8601 time with a time zone\./,
    },
    {
      name: '--now with a time but no zone',
      args: () => ['diagnose', KEY, ...layout(), '--now', '2026-04-24T06:08'],
      message: /--now "2026-04-24T06:08" is not an ISO-8601 time with a time zone\./,
    },
    {
      name: 'an output name longer than a file name can be',
      args: () => [
        'diagnose',
        'k'.repeat(128),
        '--out-dir',
        out,
        '--staging-dir',
        staging,
        '--final',
        `${'a'.repeat(150)}_{date}.csv`,
      ],
      message: /--final with this run key makes a name of 283 bytes; a file name holds at most 255\./,
    },
    {
      name: 'a --now that is not ISO-8601',
      args: () => ['diagnose', KEY, ...layout(), '--now', 'yesterday'],
      message: /--now "yesterday" is not an ISO-8601 time with a time zone\./,
    },
    {
      name: 'malformed config JSON',
      setup: () => fsp.writeFile(join(root, 'crashdiag.config.json'), '{"pipelines": {'),
      args: () => ['diagnose', KEY, '--pipeline', 'refunds'],
      message: /The config file .*crashdiag\.config\.json is not valid JSON/,
    },
    {
      name: 'a config with an unknown key',
      setup: () =>
        fsp.writeFile(
          join(root, 'crashdiag.config.json'),
          JSON.stringify({
            pipelines: {
              refunds: { outDir: 'out', stagingDir: '_staging', final: 'r_{date}.csv', outdir: 'x' },
            },
          }),
        ),
      args: () => ['diagnose', KEY, '--pipeline', 'refunds'],
      message: /pipelines\.refunds\.outdir is not a known setting \(did you mean outDir\?\)\./,
    },
    {
      name: 'a config with a bad duration',
      setup: () =>
        fsp.writeFile(
          join(root, 'crashdiag.config.json'),
          JSON.stringify({
            pipelines: {
              refunds: { outDir: 'out', stagingDir: '_staging', final: 'r_{date}.csv', staleAfter: '15 min' },
            },
          }),
        ),
      args: () => ['diagnose', KEY, '--pipeline', 'refunds'],
      message: /pipelines\.refunds\.staleAfter "15 min" is not a duration\./,
    },
    {
      name: '--pipeline with a name the config does not have',
      setup: () =>
        fsp.writeFile(
          join(root, 'crashdiag.config.json'),
          JSON.stringify({
            pipelines: { refunds: { outDir: 'out', stagingDir: '_staging', final: 'r_{date}.csv' } },
          }),
        ),
      args: () => ['diagnose', KEY, '--pipeline', 'payouts'],
      message: /has no pipeline named "payouts"\./,
    },
    {
      name: '--pipeline without any config file',
      args: () => ['diagnose', KEY, '--pipeline', 'refunds'],
      message: /--pipeline refunds needs a config file/,
    },
    {
      name: '--config naming a file that does not exist',
      args: () => ['diagnose', KEY, ...layout(), '--config', join(root, 'missing.json')],
      message: /The config file .*missing\.json does not exist\./,
    },
    {
      name: '--dry-run without --fix',
      args: () => ['diagnose', KEY, ...layout(), '--dry-run'],
      message: /--dry-run goes with --fix; without --fix, diagnose changes nothing\./,
    },
  ];

  it.each(CASES)('$name', async ({ args, setup, message }) => {
    const pid = await killedProcessPid();
    const files = [
      await put(finalPath(), 'x', HOUR),
      await put(stagedPath(pid), 'partial', HOUR),
      await put(join(staging, `${KEY}.backup.csv`), 'x', HOUR),
    ];
    await setup?.();
    const { code, stdout, stderr } = await crashdiag(args(), root);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(message);
    expect(lines[0]).toMatch(/^crashdiag: [^\n]+\.$/);
    // One sentence and at most a hint: never a stack.
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(stderr).not.toMatch(/^\s+at /m);
    expect(stderr).not.toContain('unexpected error');
    for (const path of files) expect(await exists(path)).toBe(true);
  });
});

describe('--config and --pipeline', () => {
  async function writeConfig(path: string, pipelines: Record<string, Record<string, unknown>>) {
    await fsp.writeFile(path, JSON.stringify({ pipelines }));
  }

  it('takes the layout from crashdiag.config.json in the working directory', async () => {
    await writeConfig(join(root, 'crashdiag.config.json'), {
      refunds: { outDir: 'out', stagingDir: '_staging', final: 'refunds_settled_{date}.csv' },
    });
    await put(finalPath(), 'x', HOUR);
    const result = await crashdiag(
      ['diagnose', KEY, '--pipeline', 'refunds', '--json', '--now', NOW_ISO],
      root,
    );
    expect(result.code).toBe(13);
    expect((JSON.parse(result.stdout) as DiagnosisJson).final.path).toBe(finalPath());
  });

  it('reads --config FILE from elsewhere, its relative paths relative to the file', async () => {
    const confDir = join(root, 'etc');
    const elsewhere = join(root, 'elsewhere');
    await fsp.mkdir(confDir);
    await fsp.mkdir(elsewhere);
    await writeConfig(join(confDir, 'pipelines.json'), {
      refunds: {
        outDir: '../out',
        stagingDir: '../_staging',
        final: 'refunds_settled_{date}.csv',
        marker: false,
      },
    });
    await put(finalPath(), 'x', HOUR);
    const result = await crashdiag(
      [
        'diagnose',
        KEY,
        '--config',
        '../etc/pipelines.json',
        '--pipeline',
        'refunds',
        '--json',
        '--now',
        NOW_ISO,
      ],
      elsewhere,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as DiagnosisJson;
    expect(json.final).toMatchObject({ path: finalPath(), marker: null });
  });

  it('lets flags override the pipeline’s settings', async () => {
    await writeConfig(join(root, 'crashdiag.config.json'), {
      refunds: {
        outDir: 'nowhere',
        stagingDir: '_staging',
        final: 'wrong_{date}.csv',
        marker: false,
        staleAfter: '1h',
        pidCheck: false,
      },
    });
    await put(finalPath(), 'x', HOUR);
    await put(join(out, `refunds_settled_${KEY}.csv.ok`), '', HOUR);
    await put(stagedPath(4242), 'partial', 20 * MINUTE);
    const base = ['diagnose', KEY, '--pipeline', 'refunds', '--json', '--now', NOW_ISO];
    const overrides = ['--out-dir', out, '--final', 'refunds_settled_{date}.csv'];

    // The config alone: its out-dir does not exist.
    expect((await crashdiag(base, root)).code).toBe(2);

    // Its stale-after (1h) calls the 20-minute-old file alive.
    const fromConfig = await crashdiag([...base, ...overrides], root);
    const configJson = JSON.parse(fromConfig.stdout) as DiagnosisJson;
    expect(configJson.state).toBe('RUNNING');
    expect(configJson.final).toMatchObject({ path: finalPath(), marker: null });

    // --stale-after and --marker from the command line win.
    const overridden = await crashdiag(
      [...base, ...overrides, '--stale-after', '15m', '--marker', '{final}.ok'],
      root,
    );
    const json = JSON.parse(overridden.stdout) as DiagnosisJson;
    expect(json.state).toBe('D-race');
    expect(overridden.code).toBe(12);
    expect(json.final.marker).toMatchObject({ path: `${finalPath()}.ok`, exists: true });
    expect(json.orphans[0]?.writerReason).toMatch(/--no-pid-check/);
  });

  it('names the pipeline in the human view', async () => {
    await writeConfig(join(root, 'crashdiag.config.json'), {
      refunds: { outDir: 'out', stagingDir: '_staging', final: 'refunds_settled_{date}.csv' },
    });
    const { code, stdout } = await crashdiag(['diagnose', KEY, '--pipeline', 'refunds'], root);
    expect(code).toBe(10);
    expect(stdout).toContain(`pipeline refunds, run ${KEY}, exit 10`);
  });
});

describe('crashdiag runbook and --help', () => {
  it.each([
    ['D', 'D.md'],
    ['A/B/C', 'ABC.md'],
    ['d-race', 'D-race.md'],
    ['field-guide', 'field-guide.md'],
    ['RERUN-FAILED', 'RERUN-FAILED.md'],
    ['crash-loop', 'CRASH-LOOP.md'],
    ['crash_loop', 'CRASH-LOOP.md'],
    ['blocked', 'BLOCKED.md'],
  ])('`crashdiag runbook %s` prints runbooks/%s', async (state, file) => {
    const { code, stdout } = await crashdiag(['runbook', state], root);
    expect(code).toBe(0);
    expect(stdout).toBe(await fsp.readFile(join(ROOT, 'runbooks', file), 'utf8'));
  });

  it('refuses a state it has no runbook for', async () => {
    const { code, stderr } = await crashdiag(['runbook', 'E'], root);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^crashdiag: There is no runbook for "E"\./);
  });

  it.each([[['--help']], [['diagnose', '--help']]])('%j lists the exit codes', async (args) => {
    // The built bin: help comes from the lazily loaded yargs part of the bundle.
    const { code, stdout } = await crashdiagBin(args, root);
    expect(code).toBe(0);
    for (const line of [
      ' 0  DONE',
      '10  A/B/C',
      '11  D',
      '12  D-race',
      '13  UNPUBLISHED',
      '20  RUNNING',
      '30  UNKNOWN',
      ' 2  usage or configuration error',
      ' 1  unexpected internal error',
    ]) {
      expect(stdout).toContain(line);
    }
  });

  it('`diagnose --help` lists every flag of the contract', async () => {
    const { stdout } = await crashdiag(['diagnose', '--help'], root);
    for (const flag of [
      '--out-dir',
      '--staging-dir',
      '--final',
      '--staging',
      '--marker',
      '--fresh-within',
      '--stale-after',
      '--pid-check',
      '--now',
      '--json',
      '--config',
      '--pipeline',
    ]) {
      expect(stdout).toContain(flag);
    }
  });
});

describe('run(argv, io) in process', () => {
  const OUT = '/data/out';
  const STAGING = '/data/_staging';
  const FLAGS = ['--out-dir', OUT, '--staging-dir', STAGING, '--final', 'refunds_settled_{date}.csv'];

  function fakeIo(fs: FileSystem, processes: ProcessTable) {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const io: CliIo = {
      stdout: { write: (chunk: string) => stdout.push(chunk), isTTY: false },
      stderr: { write: (chunk: string) => stderr.push(chunk), isTTY: false },
      env: { NO_COLOR: '1' },
      cwd: '/',
      fs,
      processes,
      now: () => NOW,
      sleep: async () => {},
      runCommand: async () => ({ exitStatus: null, signal: null, error: 'no commands run in these tests' }),
      user: 'oncall',
      identity: { uid: 0, gid: 0, groups: [] },
      ...realLockRuntime(),
      runbooks: installedRunbooks(),
    };
    return { io, stdout: () => stdout.join(''), stderr: () => stderr.join('') };
  }

  const noProcesses: ProcessTable = { hostname: 'batch-01', inspect: () => ({ exists: false }) };

  function volume() {
    const vol = Volume.fromJSON({
      [`${STAGING}/${KEY}.91247.csv`]: 'partial',
      [`${OUT}/refunds_settled_2026-04-23.csv`]: 'yesterday',
    });
    setTimes(vol, `${STAGING}/${KEY}.91247.csv`, NOW - HOUR);
    return vol;
  }

  it('diagnoses from the disk and the process table it is handed, with the clock it is handed', async () => {
    const vol = volume();
    const { io, stdout, stderr } = fakeIo(vol.promises as unknown as FileSystem, noProcesses);
    const code = await run(['diagnose', KEY, ...FLAGS, '--json'], io);
    expect(stderr()).toBe('');
    expect(code).toBe(11);
    const json = JSON.parse(stdout()) as DiagnosisJson;
    expect(json.orphans).toEqual([
      {
        path: `${STAGING}/${KEY}.91247.csv`,
        pid: 91247,
        host: null,
        bytes: 7,
        ageSeconds: 3600,
        writer: 'dead',
        writerReason: 'PID 91247 is not running',
        writerJudgedBy: 'pid',
      },
    ]);

    const alive: ProcessTable = {
      hostname: 'batch-01',
      inspect: () => ({ exists: true, startMs: NOW - DAY }),
    };
    const second = fakeIo(vol.promises as unknown as FileSystem, alive);
    expect(await run(['diagnose', KEY, ...FLAGS], second.io)).toBe(20);
    expect(second.stdout()).toContain('RUNNING');
  });

  it('checks flag combinations before touching the disk', async () => {
    const touched: string[] = [];
    const untouchable = new Proxy({} as FileSystem, {
      get: (_, key) => () => {
        touched.push(String(key));
        throw new Error(`fs.${String(key)} was called`);
      },
    });
    const { io, stdout, stderr } = fakeIo(untouchable, noProcesses);
    expect(await run(['diagnose', KEY, ...FLAGS, '--dry-run'], io)).toBe(2);
    expect(await run(['diagnose', '../x', ...FLAGS], io)).toBe(2);
    expect(await run(['diagnose', KEY, ...FLAGS, '--staging', '{pid}.csv'], io)).toBe(2);
    expect(touched).toEqual([]);
    expect(stdout()).toBe('');
    expect(stderr()).toMatch(/^crashdiag: --dry-run goes with --fix/);
  });

  it('reports a usage error as one sentence and a hint, exit 2', async () => {
    const { io, stderr } = fakeIo(volume().promises as unknown as FileSystem, noProcesses);
    expect(await run(['diagnose', KEY, ...FLAGS, '--stale-after', '15'], io)).toBe(2);
    expect(stderr()).toBe(
      'crashdiag: --stale-after "15" is not a duration.\n  Write a number and a unit: 90s, 15m, 6h or 2d.\n',
    );
  });

  it('reports an unexpected failure as a bug, with its stack, exit 1', async () => {
    const base = volume().promises as unknown as FileSystem;
    const broken: FileSystem = {
      ...base,
      stat: base.stat.bind(base),
      opendir: base.opendir.bind(base),
      lstat: async () => {
        throw Object.assign(new Error('EINVAL: simulated'), { code: 'EINVAL' });
      },
    };
    const { io, stdout, stderr } = fakeIo(broken, noProcesses);
    expect(await run(['diagnose', KEY, ...FLAGS], io)).toBe(1);
    expect(stdout()).toBe('');
    expect(stderr()).toMatch(/^crashdiag: unexpected error/);
    expect(stderr()).toMatch(/EINVAL: simulated\n\s+at /);
  });
});
