import { promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT_CODES, STATES, type State } from '../../src/core/states.js';
import { METRICS_HEADER } from '../../src/render/prom.js';
import { type Finished, runBin, useBuiltBin } from '../support/built-bin.js';
import { crashdiagInProcess } from '../support/in-process.js';
import { deadPids } from '../support/dead-pids.js';
import { dateKey, put } from '../support/disk.js';
import { snapshot } from '../support/file-tree.js';
import { useLiveWriter } from '../support/live-process.js';
import { parsePrometheusText, samplesOf, sampleValue } from '../support/prometheus-text.js';
import { makeTempDir, removeTempDir } from '../support/temp-dir.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const FINAL = 'refunds_settled_{date}.csv';

interface ScanRow {
  pipeline: string;
  run: string;
  state: State;
  action: string;
  exitCode: number;
  orphanCount: number;
  orphanBytes: number;
  oldestOrphanAgeSeconds: number | null;
  outputAgeSeconds: number | null;
  liveWriters: number;
  anomalies: number;
  summary: string;
}

const built = useBuiltBin();
// A writer still at work: files named after it and written after it started are its own.
const liveWriter = useLiveWriter();
let livePid: number;
beforeAll(() => {
  livePid = liveWriter.pid;
});

let root: string;
let now: number;
let nowIso: string;

beforeEach(async () => {
  root = await makeTempDir('crashdiag-scan-');
  now = Math.floor(Date.now() / 1000) * 1000;
  nowIso = new Date(now).toISOString();
});
afterEach(() => removeTempDir(root));

interface Layout {
  readonly outDir: string;
  readonly stagingDir: string;
}

async function layout(name: string): Promise<Layout> {
  const outDir = join(root, name, 'out');
  const stagingDir = join(root, name, '_staging');
  await fsp.mkdir(outDir, { recursive: true });
  await fsp.mkdir(stagingDir, { recursive: true });
  return { outDir, stagingDir };
}

const flagsFor = (l: Layout) => ['--out-dir', l.outDir, '--staging-dir', l.stagingDir, '--final', FINAL];
const output = (l: Layout, key: string) => join(l.outDir, `refunds_settled_${key}.csv`);

/** Every state, one key each (D twice), on the last seven days and one long-dead key. */
async function fleet(l: Layout): Promise<Record<string, State>> {
  const [a = 0, b = 0, c = 0] = deadPids(3);
  const key = (days: number) => dateKey(now, days);
  // DONE
  await put(output(l, key(-6)), 'id,amount\n1,2\n', now, 6 * DAY - HOUR);
  await put(`${output(l, key(-6))}.success`, '', now, 6 * DAY - HOUR);
  // D: two attempts, both dead
  await put(join(l.stagingDir, `${key(-5)}.${a}.csv`), 'partial', now, 5 * DAY);
  await put(join(l.stagingDir, `${key(-5)}.${b}.csv`), 'partial too', now, 5 * DAY - HOUR);
  // A/B/C: key(-4) has nothing
  // D-race
  await put(output(l, key(-3)), 'published', now, 3 * DAY);
  await put(`${output(l, key(-3))}.success`, '', now, 3 * DAY);
  await put(join(l.stagingDir, `${key(-3)}.${c}.csv`), 'x'.repeat(100), now, 3 * DAY + HOUR);
  // UNPUBLISHED
  await put(output(l, key(-2)), 'no marker', now, 2 * DAY);
  // UNKNOWN
  await put(`${output(l, key(-1))}.success`, '', now, DAY);
  // RUNNING: written now, after its writer started
  await fsp.writeFile(join(l.stagingDir, `${key(0)}.${livePid}.csv`), 'in flight');
  // D, more than a year old
  await put(join(l.stagingDir, `2025-01-01.${a}.csv`), 'ancient', now, 500 * DAY);
  // Not a run's
  await put(join(l.outDir, 'README'), 'hello', now, HOUR);
  await put(join(l.stagingDir, 'notes.txt'), 'hello', now, HOUR);
  return {
    [key(-6)]: 'DONE',
    [key(-5)]: 'D',
    [key(-4)]: 'A/B/C',
    [key(-3)]: 'D-race',
    [key(-2)]: 'UNPUBLISHED',
    [key(-1)]: 'UNKNOWN',
    [key(0)]: 'RUNNING',
    '2025-01-01': 'D',
  };
}

/** crashdiag scan through run(argv, io); the colour test runs the built bin. */
function scan(args: readonly string[], cwd = root): Promise<Finished> {
  return crashdiagInProcess(['scan', '--now', nowIso, ...args], cwd);
}

function rowsOf(finished: Finished): ScanRow[] {
  const parsed = JSON.parse(finished.stdout) as { schemaVersion: number; runs: ScanRow[] };
  expect(parsed.schemaVersion).toBe(1);
  return parsed.runs;
}

const statesOf = (rows: readonly ScanRow[]) => Object.fromEntries(rows.map((r) => [r.run, r.state]));

async function writeConfig(pipelines: Record<string, Layout>): Promise<void> {
  const config = {
    pipelines: Object.fromEntries(
      Object.entries(pipelines).map(([name, l]) => [
        name,
        { outDir: l.outDir, stagingDir: l.stagingDir, final: FINAL },
      ]),
    ),
  };
  await fsp.writeFile(join(root, 'crashdiag.config.json'), JSON.stringify(config, null, 2));
}

describe('crashdiag scan: the table', () => {
  it('shows every run with its state and action, worst first, without colour', async () => {
    const l = await layout('refunds');
    const expected = await fleet(l);
    const finished = await scan([...flagsFor(l), '--daily']);
    expect(finished.stderr).toBe('');
    expect(finished.code).toBe(EXIT_CODES.UNKNOWN);
    const { stdout } = finished;
    // eslint-disable-next-line no-control-regex -- asserting there are no ANSI escapes
    expect(stdout).not.toMatch(/\u001b\[/);
    for (const column of ['pipeline', 'run', 'state', 'action', 'output age', 'orphans', 'orphan bytes']) {
      expect(stdout).toContain(column);
    }
    expect(stdout).toContain('oldest orphan');
    const rows = stdout.split('\n').filter((line) => /\d{4}-\d{2}-\d{2}/.test(line));
    const shown = rows.map((line) => {
      const cells = line.split('│').map((cell) => cell.trim());
      return [cells[2], cells[3], cells[4]];
    });
    // The 7d window starts partway through the date seven days back: --daily lists that date too.
    const daily = { ...expected, [dateKey(now, -7)]: 'A/B/C' as State };
    expect(Object.fromEntries(shown.map(([run, state]) => [run, state]))).toEqual(daily);
    const codes = shown.map(([, state]) => EXIT_CODES[state as State]);
    expect(codes).toEqual([...codes].sort((x, y) => y - x));
    expect(shown[0]?.[1]).toBe('UNKNOWN');
    expect(stdout).toMatch(/9 runs: /);
  });

  it('colours each state when colour is asked for', async () => {
    const l = await layout('refunds');
    await fleet(l);
    const finished = await runBin(built.bin, ['scan', '--now', nowIso, ...flagsFor(l)], {
      cwd: root,
      env: { NO_COLOR: '', FORCE_COLOR: '1' },
    });
    expect(finished.code).toBe(EXIT_CODES.UNKNOWN);
    // One background per family of states: green done, yellow re-run, red clean, blue wait, magenta look.
    const cell = (state: string) =>
      finished.stdout.split('\n').find((line) => line.includes(` ${state} `)) ?? '';
    expect(cell('DONE')).toContain('\u001b[42m');
    expect(cell('UNPUBLISHED')).toContain('\u001b[43m');
    expect(cell('D-race')).toContain('\u001b[41m');
    expect(cell('RUNNING')).toContain('\u001b[44m');
    expect(cell('UNKNOWN')).toContain('\u001b[45m');
  });
});

describe('crashdiag scan --json', () => {
  it('prints schemaVersion 1 and one row per run with the documented fields', async () => {
    const l = await layout('refunds');
    const expected = await fleet(l);
    const finished = await scan([...flagsFor(l), '--json']);
    expect(finished.stderr).toBe('');
    const rows = rowsOf(finished);
    expect(statesOf(rows)).toEqual(
      Object.fromEntries(Object.entries(expected).filter(([, s]) => s !== 'A/B/C')),
    );
    for (const row of rows) {
      expect(Object.keys(row)).toEqual([
        'pipeline',
        'run',
        'state',
        'action',
        'exitCode',
        'orphanCount',
        'orphanBytes',
        'oldestOrphanAgeSeconds',
        'outputAgeSeconds',
        'liveWriters',
        'anomalies',
        'summary',
      ]);
      // The same name the metrics' pipeline label carries.
      expect(row.pipeline).toBe('default');
      expect(row.exitCode).toBe(EXIT_CODES[row.state]);
    }
    const byRun = Object.fromEntries(rows.map((r) => [r.run, r]));
    expect(byRun[dateKey(now, -5)]).toMatchObject({
      action: 'clean-then-rerun',
      orphanCount: 2,
      orphanBytes: 'partial'.length + 'partial too'.length,
      oldestOrphanAgeSeconds: (5 * DAY) / 1000,
    });
    expect(byRun[dateKey(now, -3)]).toMatchObject({ action: 'clean-only', orphanCount: 1, orphanBytes: 100 });
    expect(byRun[dateKey(now, 0)]).toMatchObject({ action: 'wait', orphanCount: 0, liveWriters: 1 });
    expect(byRun[dateKey(now, -6)]).toMatchObject({
      action: 'none',
      outputAgeSeconds: (6 * DAY - HOUR) / 1000,
    });
    expect(finished.code).toBe(Math.max(...rows.map((r) => r.exitCode)));
  });

  it('exits with the highest state code among the runs', async () => {
    const cases: Array<[string, (l: Layout) => Promise<void>, number]> = [
      [
        'all DONE',
        async (l) => {
          for (const days of [-1, -2, -3]) {
            await put(output(l, dateKey(now, days)), 'ok', now, -days * DAY);
            await put(`${output(l, dateKey(now, days))}.success`, '', now, -days * DAY);
          }
        },
        0,
      ],
      [
        'DONE and D',
        async (l) => {
          await put(output(l, dateKey(now, -1)), 'ok', now, DAY);
          await put(`${output(l, dateKey(now, -1))}.success`, '', now, DAY);
          await put(join(l.stagingDir, `${dateKey(now, -2)}.${deadPids(1)[0]}.csv`), 'x', now, 2 * DAY);
        },
        11,
      ],
      [
        'D and UNPUBLISHED',
        async (l) => {
          await put(output(l, dateKey(now, -1)), 'ok', now, DAY);
          await put(join(l.stagingDir, `${dateKey(now, -2)}.${deadPids(1)[0]}.csv`), 'x', now, 2 * DAY);
        },
        13,
      ],
    ];
    for (const [name, build, code] of cases) {
      const l = await layout(name.replace(/ /g, '-'));
      await build(l);
      const finished = await scan([...flagsFor(l), '--json']);
      expect(finished.stderr).toBe('');
      expect({ name, code: finished.code }).toEqual({ name, code });
      expect(Math.max(0, ...rowsOf(finished).map((r) => r.exitCode))).toBe(code);
    }
  });

  it('refuses --daily for a fixed-name output: exit 2', async () => {
    const l = await layout('latest');
    await put(join(l.outDir, 'latest.csv'), 'ok', now, HOUR);
    await put(join(l.outDir, 'latest.csv.success'), '', now, HOUR);
    const args = ['--out-dir', l.outDir, '--staging-dir', l.stagingDir, '--final', 'latest.csv'];
    const daily = await scan([...args, '--daily', '--json']);
    expect(daily.code).toBe(2);
    // Under --json the error is one JSON object on stdout too.
    expect(JSON.parse(daily.stdout)).toMatchObject({ exitCode: 2, error: { code: 'usage' } });
    expect(daily.stderr).toMatch(/--daily needs an output name that carries the run key/);
    const plain = await scan([...args, '--json']);
    expect(plain.code).toBe(0);
    expect(rowsOf(plain)).toEqual([]);
  });

  it('prints no runs, exit 0, for an empty pipeline', async () => {
    const l = await layout('empty');
    const finished = await scan([...flagsFor(l), '--json']);
    expect(finished.code).toBe(0);
    expect(rowsOf(finished)).toEqual([]);
  });

  it('lists by --since the outputs that changed, and orphans of any age', async () => {
    const l = await layout('refunds');
    await fleet(l);
    const narrow = rowsOf(await scan([...flagsFor(l), '--json', '--since', '1d']));
    // Staging keys always; outputs and markers changed within a day (key -1's marker is exactly a day old).
    expect(narrow.map((r) => r.run).sort()).toEqual(
      ['2025-01-01', dateKey(now, -5), dateKey(now, -3), dateKey(now, -1), dateKey(now, 0)].sort(),
    );
    const wide = rowsOf(await scan([...flagsFor(l), '--json', '--since', '30d']));
    expect(wide).toHaveLength(7);
  });

  it.each(['0d', '0s'])('--since %s, an empty window, is exit 2 with the reason', async (since) => {
    const l = await layout('refunds');
    await fleet(l);
    const finished = await scan([...flagsFor(l), '--since', since]);
    expect(finished.code).toBe(2);
    expect(finished.stderr).toContain(`--since ${since} is an empty window`);
    expect(finished.stdout).toBe('');
  });

  it('a marker every key shares (_SUCCESS) beside keyed outputs: the state diagnose names, DONE or UNPUBLISHED', async () => {
    const l = await layout('shared-marker');
    const key = dateKey(now, -1);
    await put(output(l, key), 'id,amount\n1,10\n', now, 2 * MINUTE);
    const flags = [...flagsFor(l), '--marker', '_SUCCESS'];
    const unpublished = await scan([...flags, '--json']);
    expect(statesOf(rowsOf(unpublished))).toEqual({ [key]: 'UNPUBLISHED' });
    await put(join(l.outDir, '_SUCCESS'), '', now, MINUTE);
    const done = await scan([...flags, '--json']);
    expect(statesOf(rowsOf(done))).toEqual({ [key]: 'DONE' });
    expect(done.code).toBe(0);
  });

  it('passes --no-pid-check and --stale-after through to the writer verdicts', async () => {
    const l = await layout('refunds');
    const [dead] = deadPids(1);
    await put(join(l.stagingDir, `${dateKey(now, 0)}.${dead}.csv`), 'x', now, 20 * MINUTE);
    const byPid = rowsOf(await scan([...flagsFor(l), '--json']));
    expect(statesOf(byPid)).toEqual({ [dateKey(now, 0)]: 'D' });
    const byAge = await scan([...flagsFor(l), '--json', '--no-pid-check', '--stale-after', '1h']);
    expect(statesOf(rowsOf(byAge))).toEqual({ [dateKey(now, 0)]: 'RUNNING' });
    expect(byAge.code).toBe(EXIT_CODES.RUNNING);
  });
});

describe('crashdiag scan across pipelines', () => {
  it('--all scans every pipeline in the config and names each in its rows', async () => {
    const refunds = await layout('refunds');
    const ledger = await layout('ledger');
    const refundsStates = await fleet(refunds);
    await put(output(ledger, dateKey(now, -1)), 'ok', now, DAY);
    await put(`${output(ledger, dateKey(now, -1))}.success`, '', now, DAY);
    await put(join(ledger.stagingDir, `${dateKey(now, -2)}.${deadPids(1)[0]}.csv`), 'x', now, 2 * DAY);
    await writeConfig({ refunds, ledger });

    const json = await scan(['--all', '--json']);
    expect(json.stderr).toBe('');
    const rows = rowsOf(json);
    expect(statesOf(rows.filter((r) => r.pipeline === 'ledger'))).toEqual({
      [dateKey(now, -1)]: 'DONE',
      [dateKey(now, -2)]: 'D',
    });
    const refundsRows = rows.filter((r) => r.pipeline === 'refunds');
    expect(Object.keys(statesOf(refundsRows)).sort()).toEqual(
      Object.keys(refundsStates)
        .filter((k) => refundsStates[k] !== 'A/B/C')
        .sort(),
    );
    expect(rows.every((r) => r.pipeline === 'ledger' || r.pipeline === 'refunds')).toBe(true);
    expect(json.code).toBe(EXIT_CODES.UNKNOWN);

    const table = await scan(['--all']);
    expect(table.code).toBe(EXIT_CODES.UNKNOWN);
    const pipelineCells = table.stdout
      .split('\n')
      .filter((line) => /\d{4}-\d{2}-\d{2}/.test(line))
      .map((line) => line.split('│')[1]?.trim());
    expect(new Set(pipelineCells)).toEqual(new Set(['refunds', 'ledger']));
  });

  it('--pipeline NAME takes one pipeline from the config', async () => {
    const refunds = await layout('refunds');
    const ledger = await layout('ledger');
    await fleet(refunds);
    await put(output(ledger, dateKey(now, -1)), 'ok', now, DAY);
    await put(`${output(ledger, dateKey(now, -1))}.success`, '', now, DAY);
    await writeConfig({ refunds, ledger });
    const finished = await scan(['--pipeline', 'ledger', '--json']);
    expect(finished.code).toBe(0);
    expect(rowsOf(finished)).toMatchObject([{ pipeline: 'ledger', run: dateKey(now, -1), state: 'DONE' }]);
  });

  it('refuses --all with --out-dir: exit 2, nothing read or written', async () => {
    const refunds = await layout('refunds');
    await fleet(refunds);
    await writeConfig({ refunds });
    const before = await snapshot(root);
    const finished = await scan(['--all', '--out-dir', refunds.outDir]);
    expect(finished.code).toBe(2);
    expect(finished.stdout).toBe('');
    expect(finished.stderr).toMatch(/--all .* does not go with --out-dir/);
    expect(await snapshot(root)).toEqual(before);
  });

  it('refuses --all without a config file: exit 2', async () => {
    const finished = await scan(['--all']);
    expect(finished.code).toBe(2);
    expect(finished.stderr).toMatch(/--all needs a config file, and none was found; looked for /);
  });
});

describe('crashdiag scan --format prom', () => {
  async function twoPipelines() {
    const refunds = await layout('refunds');
    const ledger = await layout('ledger');
    await fleet(refunds);
    await put(output(ledger, dateKey(now, -1)), 'ok', now, DAY);
    await put(`${output(ledger, dateKey(now, -1))}.success`, '', now, DAY);
    await put(
      join(ledger.stagingDir, `${dateKey(now, -2)}.${deadPids(1)[0]}.csv`),
      'x'.repeat(42),
      now,
      2 * DAY,
    );
    await writeConfig({ refunds, ledger });
    return { refunds, ledger };
  }

  /** The metrics must agree with the JSON view of the same disk. */
  async function expectAgreesWithJson(text: string, args: readonly string[]) {
    const parsed = parsePrometheusText(text);
    const rows = rowsOf(await scan([...args, '--json']));
    for (const pipeline of ['refunds', 'ledger']) {
      const mine = rows.filter((r) => r.pipeline === pipeline);
      const perState = samplesOf(parsed, 'crashdiag_runs', { pipeline });
      expect(perState.map((s) => s.labels.state)).toEqual([...STATES]);
      expect(perState.reduce((n, s) => n + s.value, 0)).toBe(mine.length);
      for (const sample of perState) {
        expect(sample.value).toBe(mine.filter((r) => r.state === sample.labels.state).length);
      }
      expect(sampleValue(parsed, 'crashdiag_orphan_files', { pipeline })).toBe(
        mine.reduce((n, r) => n + r.orphanCount, 0),
      );
      expect(sampleValue(parsed, 'crashdiag_orphan_bytes', { pipeline })).toBe(
        mine.reduce((n, r) => n + r.orphanBytes, 0),
      );
      expect(sampleValue(parsed, 'crashdiag_oldest_orphan_age_seconds', { pipeline })).toBe(
        Math.max(0, ...mine.map((r) => r.oldestOrphanAgeSeconds ?? 0)),
      );
      expect(sampleValue(parsed, 'crashdiag_scan_timestamp_seconds', { pipeline })).toBe(now / 1000);
      expect(sampleValue(parsed, 'crashdiag_scan_duration_seconds', { pipeline })).toBeGreaterThanOrEqual(0);
    }
    expect(sampleValue(parsed, 'crashdiag_orphan_bytes', { pipeline: 'ledger' })).toBe(42);
    expect(sampleValue(parsed, 'crashdiag_last_published_timestamp_seconds', { pipeline: 'ledger' })).toBe(
      (now - DAY) / 1000,
    );
    expect(sampleValue(parsed, 'crashdiag_last_published_timestamp_seconds', { pipeline: 'refunds' })).toBe(
      (now - 3 * DAY) / 1000,
    );
  }

  it('prints metrics to stdout that parse back and agree with the runs', async () => {
    await twoPipelines();
    const finished = await scan(['--all', '--format', 'prom', '--daily']);
    expect(finished.stderr).toBe('');
    expect(finished.code).toBe(EXIT_CODES.UNKNOWN);
    await expectAgreesWithJson(finished.stdout, ['--all', '--daily']);
  });

  it('--prom-file writes the file atomically and leaves nothing else in its directory', async () => {
    await twoPipelines();
    const textfile = join(root, 'textfile');
    await fsp.mkdir(textfile);
    const target = join(textfile, 'crashdiag.prom');
    await fsp.writeFile(target, `${METRICS_HEADER}\n# a previous scrape\n`);
    for (let round = 0; round < 2; round++) {
      const finished = await scan(['--all', '--format', 'prom', '--prom-file', target]);
      expect(finished.stderr).toBe('');
      expect(finished.stdout).toBe('');
      expect(finished.code).toBe(EXIT_CODES.UNKNOWN);
      expect(await fsp.readdir(textfile)).toEqual(['crashdiag.prom']);
    }
    await expectAgreesWithJson(await fsp.readFile(target, 'utf8'), ['--all']);
  });

  it('takes a --prom-file relative to the working directory', async () => {
    await twoPipelines();
    const finished = await scan(['--all', '--format', 'prom', '--prom-file', 'metrics.prom']);
    expect(finished.code).toBe(EXIT_CODES.UNKNOWN);
    parsePrometheusText(await fsp.readFile(join(root, 'metrics.prom'), 'utf8'));
  });

  it.each([
    ['a directory that does not exist', (dir: string) => join(dir, 'missing', 'crashdiag.prom')],
    ['a path under a regular file', (dir: string) => join(dir, 'crashdiag.config.json', 'crashdiag.prom')],
    ['an existing directory', (dir: string) => dir],
  ])('exits 2 when --prom-file is in %s, leaving no file behind', async (_, pathIn) => {
    await twoPipelines();
    const before = await snapshot(root);
    const finished = await scan(['--all', '--format', 'prom', '--prom-file', pathIn(root)]);
    expect(finished.code).toBe(2);
    expect(finished.stderr).toMatch(/^crashdiag: Cannot write the metrics file /);
    expect(await snapshot(root)).toEqual(before);
    // Nor a temp file beside the directory given as the file.
    const leftovers = (await fsp.readdir(dirname(root))).filter((n) => n.startsWith(`.${basename(root)}.`));
    expect(leftovers).toEqual([]);
  });

  it.skipIf(process.getuid?.() === 0)('exits 2 when the --prom-file directory is not writable', async () => {
    await twoPipelines();
    const textfile = join(root, 'textfile');
    await fsp.mkdir(textfile, { mode: 0o555 });
    try {
      const finished = await scan(['--all', '--format', 'prom', '--prom-file', join(textfile, 'x.prom')]);
      expect(finished.code).toBe(2);
      expect(await fsp.readdir(textfile)).toEqual([]);
    } finally {
      await fsp.chmod(textfile, 0o755);
    }
  });

  it('refuses --prom-file without --format prom, and --json with --format prom', async () => {
    const l = await layout('refunds');
    const alone = await scan([...flagsFor(l), '--prom-file', join(root, 'x.prom')]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(/--prom-file goes with --format prom/);
    const both = await scan([...flagsFor(l), '--json', '--format', 'prom']);
    expect(both.code).toBe(2);
    expect(await fsp.readdir(root)).toEqual(['refunds']);
  });
});
