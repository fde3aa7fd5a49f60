import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/core/states.js';
import { bindMountProblem, runBinWithBindMount } from '../support/bind-mount.js';
import { type Finished, useBuiltBin } from '../support/built-bin.js';
import { crashdiagInProcess } from '../support/in-process.js';
import { deadPid } from '../support/dead-pids.js';
import { put, untilQuietFor } from '../support/disk.js';
import { treeOf } from '../support/file-tree.js';
import { makeTempDir, removeTempDir } from '../support/temp-dir.js';

const DAY = 86_400_000;
const K = '2026-04-24';

const built = useBuiltBin();

let root: string;
let now: number;
beforeEach(async () => {
  root = await makeTempDir('crashdiag-shared-');
  now = Date.now();
});
afterEach(() => removeTempDir(root));

const noBindMount = bindMountProblem();
if (noBindMount) console.log(`skipping the bind-mount tests: ${noBindMount}`);

/** The run key K.<pid> published in out/ (with its marker) under a final '{date}.csv', days old. */
async function publishedLookingLikeAnOrphan(outDir: string): Promise<string> {
  const pid = deadPid();
  for (const name of [`${K}.csv`, `${K}.csv.success`, `${K}.${pid}.csv`, `${K}.${pid}.csv.success`])
    await put(join(outDir, name), name.endsWith('.success') ? '' : `published ${name}\n`, now, 3 * DAY);
  return `${K}.${pid}.csv`;
}

describe('one directory reached by two paths', () => {
  let outDir: string;
  let stagingDir: string;
  const flags = () => ['--out-dir', outDir, '--staging-dir', stagingDir, '--final', '{date}.csv'];
  beforeEach(async () => {
    outDir = join(root, 'out');
    stagingDir = join(root, 'stg');
    await fsp.mkdir(outDir);
  });

  describe.skipIf(noBindMount !== undefined)('mount --bind out stg', () => {
    beforeEach(() => fsp.mkdir(stagingDir));
    // unshare runs the bin inside a private mount namespace with the bind mount in place.
    const inside = (args: readonly string[]): Promise<Finished> =>
      runBinWithBindMount(built.bin, outDir, stagingDir, args, root);

    it('diagnose --fix deletes nothing when a published output fits the staging template through a bind mount', async () => {
      const name = await publishedLookingLikeAnOrphan(outDir);
      const before = await treeOf(root);
      const finished = await inside(['diagnose', K, ...flags(), '--fix', '--json']);
      expect(finished.stderr).not.toMatch(/unexpected error/);
      expect(finished.stdout).not.toMatch(/"result": "deleted"/);
      expect(JSON.parse(finished.stdout).state).not.toBe('D-race');
      expect(await treeOf(root)).toEqual(before);
      expect(await fsp.readFile(join(outDir, name), 'utf8')).toBe(`published ${name}\n`);
    });

    it('clean deletes nothing when a published output fits the staging template through a bind mount', async () => {
      await publishedLookingLikeAnOrphan(outDir);
      const before = await treeOf(root);
      const finished = await inside(['clean', ...flags(), '--json']);
      expect(finished.code).toBe(0);
      expect(JSON.parse(finished.stdout).pipelines[0].removed).toEqual([]);
      expect(await treeOf(root)).toEqual(before);
    });

    it('diagnose does not call a published output seen through a bind mount an orphan', async () => {
      const name = await publishedLookingLikeAnOrphan(outDir);
      const finished = await inside(['diagnose', K, ...flags(), '--json']);
      const diagnosis = JSON.parse(finished.stdout);
      expect(diagnosis.state).not.toBe('D-race');
      expect(diagnosis.orphans).toEqual([]);
      expect(JSON.stringify(diagnosis.anomalies)).toContain(name);
    });
  });

  describe('ln -s out stg', () => {
    beforeEach(() => fsp.symlink(outDir, stagingDir));

    it('diagnose through a symlinked staging dir neither calls a published output D-race nor prints rm', async () => {
      const name = await publishedLookingLikeAnOrphan(outDir);
      const finished = await crashdiagInProcess(['diagnose', K, ...flags()], root);
      expect(finished.stdout).not.toMatch(/D-race/);
      expect(finished.stdout).not.toMatch(/rm --/);
      expect(finished.stdout).toContain(name);
      expect(finished.code).toBe(EXIT_CODES.UNKNOWN);
    });

    it('diagnose --fix and clean through a symlinked staging dir delete nothing', async () => {
      await publishedLookingLikeAnOrphan(outDir);
      const before = await treeOf(root);
      const fixed = await crashdiagInProcess(['diagnose', K, ...flags(), '--fix'], root);
      expect(fixed.stderr).not.toMatch(/unexpected error/);
      const cleaned = await crashdiagInProcess(['clean', ...flags()], root);
      expect(cleaned.code).toBe(0);
      expect(await treeOf(root)).toEqual(before);
    });
  });
});

async function writeConfig(config: unknown): Promise<void> {
  await fsp.writeFile(join(root, 'crashdiag.config.json'), JSON.stringify(config, null, 2));
}

describe('--quarantine in an output directory under another name', () => {
  let outDir: string;
  let stagingDir: string;
  let orphan: string;
  beforeEach(async () => {
    outDir = join(root, 'out');
    stagingDir = join(root, 'stg');
    for (const dir of [outDir, stagingDir, join(root, 'other-out')]) await fsp.mkdir(dir);
    orphan = join(stagingDir, `${K}.${deadPid()}.csv`);
    await put(orphan, 'half written\n', now, 2 * DAY);
  });
  const fixFlags = () => ['diagnose', K, '--out-dir', outDir, '--staging-dir', stagingDir, '--final', 'r_{date}.csv', '--fix'];

  it.skipIf(noBindMount !== undefined)('refuses a quarantine that is the output directory bind-mounted', async () => {
    const quarantine = join(root, 'q');
    await fsp.mkdir(quarantine);
    const before = await treeOf(root);
    const finished = await runBinWithBindMount(built.bin, outDir, quarantine, [...fixFlags(), '--quarantine', quarantine], root);
    expect(finished.stderr).toMatch(/^crashdiag: --quarantine .* overlaps the output directory/);
    expect(finished.code).toBe(2);
    expect(await treeOf(root)).toEqual(before);
  });

  it('refuses a quarantine inside another pipeline\'s output directory', async () => {
    await writeConfig({
      pipelines: { other: { outDir: 'other-out', stagingDir: 'other-stg', final: 'o_{date}.csv' } },
    });
    const before = await treeOf(root);
    const finished = await crashdiagInProcess([...fixFlags(), '--quarantine', join(root, 'other-out', 'q')], root);
    expect(finished.stderr).toMatch(/^crashdiag: --quarantine .* overlaps the output directory/);
    expect(finished.code).toBe(2);
    expect(await treeOf(root)).toEqual(before);
  });
});

describe('pipelines that share directories', () => {
  it('clean --all keeps b\'s published report that pipeline a, staging in b\'s out-dir, reads as an orphan', async () => {
    for (const dir of ['shared', 'a-out', 'b-staging']) await fsp.mkdir(join(root, dir));
    await writeConfig({
      pipelines: {
        a: { outDir: 'a-out', stagingDir: 'shared', final: 'a_{date}.csv' },
        b: { outDir: 'shared', stagingDir: 'b-staging', final: 'report.{date}.csv' },
      },
    });
    await put(join(root, 'shared', 'report.20260424.csv'), 'published by b\n', now, 3 * DAY);
    await put(join(root, 'shared', 'report.20260424.csv.success'), '', now, 3 * DAY);
    // Run key 4242 of b: also a's key "report" written by PID 4242, a number that can be a PID.
    await put(join(root, 'shared', 'report.4242.csv'), 'published by b\n', now, 3 * DAY);
    await put(join(root, 'shared', 'report.4242.csv.success'), '', now, 3 * DAY);
    const before = await treeOf(root);
    const all = await crashdiagInProcess(['clean', '--all', '--json'], root);
    expect(all.stderr).toBe('');
    expect(all.code).toBe(0);
    const onlyA = await crashdiagInProcess(['clean', '--pipeline', 'a'], root);
    expect(onlyA.code).toBe(0);
    const fixA = await crashdiagInProcess(['diagnose', 'report', '--pipeline', 'a', '--fix'], root);
    expect(fixA.stderr).not.toMatch(/unexpected error/);
    expect(await treeOf(root)).toEqual(before);
    // Read-only, too: b's output is not a's orphan.
    const seen = JSON.parse(
      (await crashdiagInProcess(['diagnose', 'report', '--pipeline', 'a', '--json'], root)).stdout,
    );
    expect(seen.orphans).toEqual([]);
    expect(JSON.stringify(seen.anomalies)).toMatch(/published name for run 4242 of pipeline b/);
  });

  it('--pipeline refunds --fix keeps the in-flight file that payouts (pidCheck false) calls RUNNING', async () => {
    for (const dir of ['stg', 'payouts-out', 'refunds-out']) await fsp.mkdir(join(root, dir));
    await writeConfig({
      pipelines: {
        payouts: { outDir: 'payouts-out', stagingDir: 'stg', final: 'payouts_{date}.csv', pidCheck: false },
        refunds: { outDir: 'refunds-out', stagingDir: 'stg', final: 'refunds_{date}.csv' },
      },
    });
    // Written in another PID namespace: its PID means nothing here, and is not running here.
    const inFlight = join(root, 'stg', `${K}.${deadPid()}.csv`);
    await fsp.writeFile(inFlight, 'payouts, half written\n');
    const payouts = await crashdiagInProcess(['diagnose', K, '--pipeline', 'payouts', '--json'], root);
    expect(JSON.parse(payouts.stdout).state).toBe('RUNNING');
    const before = await treeOf(root);
    const refunds = await crashdiagInProcess(['diagnose', K, '--pipeline', 'refunds', '--fix', '--json'], root);
    expect(JSON.parse(refunds.stdout).state).toBe('RUNNING');
    expect(refunds.code).toBe(EXIT_CODES.RUNNING);
    expect(await treeOf(root)).toEqual(before);
  });

  it('clean --pipeline refunds waits for the longest staleAfter of the pipelines staging that name', async () => {
    for (const dir of ['stg', 'payouts-out', 'refunds-out']) await fsp.mkdir(join(root, dir));
    await writeConfig({
      pipelines: {
        payouts: {
          outDir: 'payouts-out',
          stagingDir: 'stg',
          final: 'payouts_{date}.csv',
          pidCheck: false,
          staleAfter: '3d',
        },
        refunds: { outDir: 'refunds-out', stagingDir: 'stg', final: 'refunds_{date}.csv', staleAfter: '1s' },
      },
    });
    // A slow payouts writer on shared storage: quiet longer than refunds' 1s, well within payouts' 3d.
    // Its last change (the ctime) cannot be set back, so wait until the file really is that quiet.
    const path = join(root, 'stg', `${K}.${deadPid()}.csv`);
    await fsp.writeFile(path, 'payouts, slow\n');
    await untilQuietFor(path, 1500);
    const before = await treeOf(root);
    const finished = await crashdiagInProcess(
      ['clean', '--pipeline', 'refunds', '--older-than', '1s', '--force-short-threshold', '--json'],
      root,
    );
    expect(finished.code).toBe(0);
    const report = JSON.parse(finished.stdout).pipelines[0];
    expect(report.removed).toEqual([]);
    expect(report.kept[0].reason).toMatch(/pipeline payouts/);
    expect(await treeOf(root)).toEqual(before);
  });
});

describe('crashdiag pipelines', () => {
  it('lists the config and its pipelines, and warns where two share a directory, by identity', async () => {
    for (const dir of ['shared', 'a-out', 'b-staging', 'c-out', 'c-staging']) await fsp.mkdir(join(root, dir));
    // b names the shared directory through a symlink: the same directory all the same.
    await fsp.symlink(join(root, 'shared'), join(root, 'shared-link'));
    await writeConfig({
      pipelines: {
        a: { outDir: 'a-out', stagingDir: 'shared', final: 'a_{date}.csv' },
        b: { outDir: 'shared-link', stagingDir: 'b-staging', final: 'report.{date}.csv' },
        c: { outDir: 'c-out', stagingDir: 'c-staging', final: 'c_{date}.csv' },
      },
    });
    const human = await crashdiagInProcess(['pipelines'], root);
    expect(human.stderr).toBe('');
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`config: ${join(root, 'crashdiag.config.json')}`);
    for (const name of ['a', 'b', 'c']) expect(human.stdout).toMatch(new RegExp(`^${name}$`, 'm'));
    const warnings = human.stdout.split('\n').filter((line) => line.startsWith('warning:'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/pipelines a and b share a directory: a's staging-dir .*shared is b's out-dir .*shared-link/);
    const json = await crashdiagInProcess(['pipelines', '--json'], root);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout);
    expect(parsed.pipelines.map((p: { name: string }) => p.name)).toEqual(['a', 'b', 'c']);
    expect(parsed.overlaps).toEqual([
      {
        first: { pipeline: 'a', role: 'stagingDir', dir: join(root, 'shared') },
        second: { pipeline: 'b', role: 'outDir', dir: join(root, 'shared-link') },
      },
    ]);
  });

  it('exits 2 in one sentence when there is no config file', async () => {
    const finished = await crashdiagInProcess(['pipelines'], root);
    expect(finished.code).toBe(2);
    expect(finished.stderr).toMatch(/^crashdiag: No config file found; looked for .*crashdiag\.config\.json/);
  });
});
