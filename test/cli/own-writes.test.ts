import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { METRICS_HEADER } from '../../src/render/prom.js';
import { deadPid } from '../support/dead-pids.js';
import { crashdiagInProcess, type InProcessRun as Finished } from '../support/in-process.js';
import { put } from '../support/disk.js';
import { treeOf } from '../support/file-tree.js';
import { removeTempDir } from '../support/temp-dir.js';
import { type Layout, makeTempLayout } from '../support/temp-layout.js';

const DAY = 86_400_000;
const K = '2026-04-24';
const FINAL = 'r_{date}.csv';

let layout: Layout;
let now: number;
beforeEach(async () => {
  layout = await makeTempLayout('crashdiag-own-writes-');
  now = Date.now();
});
afterEach(() => removeTempDir(layout.root));

const flags = () => ['--out-dir', layout.outDir, '--staging-dir', layout.stagingDir, '--final', FINAL];
const published = () => join(layout.outDir, `r_${K}.csv`);
const crashdiag = (args: readonly string[]): Promise<Finished> => crashdiagInProcess(args, layout.root);

/** K published, plus a dead orphan beside it: a D-race that --fix and clean would act on, and record. */
async function dRace(): Promise<void> {
  await put(published(), 'id,amount\n1,10\n', now, 2 * DAY);
  await put(`${published()}.success`, '', now, 2 * DAY);
  await put(join(layout.stagingDir, `${K}.${deadPid()}.csv`), 'half', now, 2 * DAY);
}

/** The refusal: exit 2, one sentence, and the disk exactly as it was (crashdiag's state dir included). */
async function expectRefused(run: () => Promise<Finished>, pattern: RegExp): Promise<void> {
  const before = await treeOf(layout.root, []);
  const finished = await run();
  expect(finished.stdout).toBe('');
  expect(finished.stderr).toMatch(pattern);
  expect(finished.stderr).not.toMatch(/unexpected error|\n\s+at /);
  expect(finished.code).toBe(2);
  expect(await treeOf(layout.root, [])).toEqual(before);
}

describe('crashdiag never writes its audit log onto a published file', () => {
  const refusal = /^crashdiag: The audit log .* is inside the output directory .*; crashdiag never writes there, and nothing was changed\.\n/;

  it('--fix --audit-log out/r_K.csv is refused before anything changes', async () => {
    await dRace();
    await expectRefused(() => crashdiag(['diagnose', K, ...flags(), '--fix', '--audit-log', published()]), refusal);
  });

  it('--fix --dry-run --audit-log out/r_K.csv gives the same refusal', async () => {
    await dRace();
    await expectRefused(
      () => crashdiag(['diagnose', K, ...flags(), '--fix', '--dry-run', '--audit-log', published()]),
      refusal,
    );
  });

  it('clean --audit-log out/r_K.csv is refused before anything changes', async () => {
    await dRace();
    await expectRefused(() => crashdiag(['clean', ...flags(), '--audit-log', published()]), refusal);
  });

  it('auditLog in the config pointing at a published output is refused, for --fix and clean', async () => {
    await dRace();
    await fsp.writeFile(
      join(layout.root, 'crashdiag.config.json'),
      JSON.stringify({
        pipelines: { r: { outDir: 'out', stagingDir: '_staging', final: FINAL, auditLog: `out/r_${K}.csv` } },
      }),
    );
    await expectRefused(() => crashdiag(['diagnose', K, '--pipeline', 'r', '--fix']), refusal);
    await expectRefused(() => crashdiag(['clean', '--pipeline', 'r']), refusal);
  });

  it('an audit log in another pipeline\'s out-dir, or in the out-dir reached through a symlink, is refused', async () => {
    await dRace();
    const other = join(layout.root, 'other-out');
    await fsp.mkdir(other);
    await put(join(other, 'o_2026-04-20.csv'), 'other pipeline\'s output\n', now, 5 * DAY);
    await fsp.symlink(layout.outDir, join(layout.root, 'out-link'));
    await fsp.writeFile(
      join(layout.root, 'crashdiag.config.json'),
      JSON.stringify({
        pipelines: {
          r: { outDir: 'out', stagingDir: '_staging', final: FINAL },
          o: { outDir: 'other-out', stagingDir: '_staging', final: 'o_{date}.csv' },
        },
      }),
    );
    await expectRefused(
      () => crashdiag(['diagnose', K, '--pipeline', 'r', '--fix', '--audit-log', 'other-out/o_2026-04-20.csv']),
      refusal,
    );
    await expectRefused(
      () => crashdiag(['clean', '--pipeline', 'r', '--audit-log', `out-link/r_${K}.csv`]),
      refusal,
    );
  });
});

describe('scan --prom-file replaces only a previous metrics file, or nothing', () => {
  const scanProm = (target: string) => crashdiag(['scan', ...flags(), '--format', 'prom', '--prom-file', target]);

  it('scan --format prom --prom-file out/r_K.csv is refused and the output stays', async () => {
    await dRace();
    await expectRefused(() => scanProm(published()), /^crashdiag: The metrics file .* is inside the output directory /);
  });

  it('a new metrics file in the output directory is refused too: published files live there', async () => {
    await expectRefused(
      () => scanProm(join(layout.outDir, 'crashdiag.prom')),
      /^crashdiag: The metrics file .* is inside the output directory /,
    );
  });

  it('an existing file that crashdiag did not write is refused', async () => {
    await fsp.writeFile(join(layout.root, 'notes.txt'), 'someone\'s notes\n');
    await expectRefused(
      () => scanProm(join(layout.root, 'notes.txt')),
      /^crashdiag: Cannot write the metrics file .*notes\.txt: it is a file crashdiag did not write/,
    );
  });

  it('a symlink at the metrics path is refused, and its target untouched', async () => {
    await dRace();
    await fsp.symlink(published(), join(layout.root, 'metrics.prom'));
    await expectRefused(
      () => scanProm(join(layout.root, 'metrics.prom')),
      /^crashdiag: Cannot write the metrics file .*metrics\.prom: it is a symlink/,
    );
  });

  it('replaces its own previous metrics file, which starts with its header', async () => {
    const target = join(layout.root, 'crashdiag.prom');
    const first = await scanProm(target);
    expect(first.stderr).toBe('');
    const text = await fsp.readFile(target, 'utf8');
    expect(text.startsWith(`${METRICS_HEADER}\n`)).toBe(true);
    const second = await scanProm(target);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(first.code);
  });
});
