import { spawn, spawnSync } from 'node:child_process';
import { lstatSync, promises as fsp, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FileSystem } from '../../src/core/fs.js';
import { bindMountProblem, runBinWithBindMount } from '../support/bind-mount.js';
import { collectOutput, type Finished, useBuiltBin } from '../support/built-bin.js';
import { deadPid } from '../support/dead-pids.js';
import { put } from '../support/disk.js';
import { treeOf } from '../support/file-tree.js';
import { makeTempDir, removeTempDir } from '../support/temp-dir.js';
import { crashdiagInProcess, type InProcessRun } from '../support/in-process.js';

/** The real disk, except that `swing` runs before each lstat: the moment a file is first looked at. */
function swingingAtLstat(swing: (path: string) => void): FileSystem {
  return {
    ...fsp,
    lstat: ((path: string, ...rest: []) => {
      swing(path);
      return fsp.lstat(path, ...rest);
    }) as FileSystem['lstat'],
    lstatSync: ((path: string, ...rest: []) => {
      swing(path);
      return lstatSync(path, ...rest);
    }) as FileSystem['lstatSync'],
  };
}

/*
 * Attacks on the directory rules (same directory, published names of every
 * pipeline, where crashdiag's own files may go), each on real directories.
 * Every refusal leaves the disk as it was, byte for byte, crashdiag's own
 * state directory included.
 */

const DAY = 86_400_000;
const K = '2026-04-24';

const built = useBuiltBin();

let root: string;
let now: number;
beforeEach(async () => {
  root = await makeTempDir('crashdiag-attacks-');
  now = Date.now();
});
afterEach(() => removeTempDir(root));

const crashdiag = (args: readonly string[]): Promise<Finished> => crashdiagInProcess(args, root);

const noBindMount = bindMountProblem();
if (noBindMount) console.log(`skipping the bind-mount attacks: ${noBindMount}`);

/** The bin with `from` bind-mounted on `onto`, for this run alone. */
const withBindMount = (from: string, onto: string, args: readonly string[]): Promise<Finished> =>
  runBinWithBindMount(built.bin, from, onto, args, root);

async function writeConfig(config: unknown): Promise<void> {
  await fsp.writeFile(join(root, 'crashdiag.config.json'), JSON.stringify(config, null, 2));
}

/**
 * exit 2, one sentence without a stack, and every byte under root as it was
 * (crashdiag's own state directory too, unless `skip` leaves it out).
 */
async function expectRefused(run: () => Promise<Finished>, pattern: RegExp, skip: string[] = []): Promise<void> {
  const before = await treeOf(root, skip);
  const finished = await run();
  expect(finished.stderr).toMatch(pattern);
  expect(finished.stderr).not.toMatch(/unexpected error|\n\s+at /);
  expect(finished.code).toBe(2);
  expect(await treeOf(root, skip)).toEqual(before);
}

/** out/r_K.csv published with its marker, and a dead orphan of K in stg/: a D-race --fix acts on. */
async function dRace(): Promise<string[]> {
  for (const dir of ['out', 'stg']) await fsp.mkdir(join(root, dir));
  await put(join(root, 'out', `r_${K}.csv`), 'id,amount\n1,10\n', now, 2 * DAY);
  await put(join(root, 'out', `r_${K}.csv.success`), '', now, 2 * DAY);
  await put(join(root, 'stg', `${K}.${deadPid()}.csv`), 'half', now, 2 * DAY);
  return ['--out-dir', 'out', '--staging-dir', 'stg', '--final', 'r_{date}.csv'];
}

describe('the audit log is a regular file of its own', () => {
  it('a hard link planted as stg/.crashdiag/audit.jsonl to the published output is refused, no flag needed', async () => {
    const layout = await dRace();
    await fsp.mkdir(join(root, 'stg', '.crashdiag'));
    await fsp.link(join(root, 'out', `r_${K}.csv`), join(root, 'stg', '.crashdiag', 'audit.jsonl'));
    await expectRefused(
      () => crashdiag(['diagnose', K, ...layout, '--fix']),
      /^crashdiag: The audit log .*audit\.jsonl is a file with 2 hard links/,
    );
    await expectRefused(() => crashdiag(['clean', ...layout]), /^crashdiag: The audit log .*audit\.jsonl is a file with 2 hard links/);
    expect(await fsp.readFile(join(root, 'out', `r_${K}.csv`), 'utf8')).toBe('id,amount\n1,10\n');
  });

  it('--audit-log naming a hard link to the published output outside any out-dir is refused', async () => {
    const layout = await dRace();
    await fsp.link(join(root, 'out', `r_${K}.csv`), join(root, 'audit.jsonl'));
    // Where the lock goes: crashdiag would create it, and the tree compares it too.
    await fsp.mkdir(join(root, 'stg', '.crashdiag'));
    await expectRefused(
      () => crashdiag(['diagnose', K, ...layout, '--fix', '--audit-log', 'audit.jsonl']),
      /^crashdiag: The audit log .*audit\.jsonl is a file with 2 hard links/,
    );
  });

  it('a FIFO planted as the audit log is refused at once instead of hanging the fix', async () => {
    const layout = await dRace();
    await fsp.mkdir(join(root, 'stg', '.crashdiag'));
    spawnSync('mkfifo', [join(root, 'stg', '.crashdiag', 'audit.jsonl')]);
    // Killed after a minute: the attack is a hang, and a hung child must not outlive the test.
    const fix = () =>
      collectOutput(
        spawn(process.execPath, [built.bin, 'diagnose', K, ...layout, '--fix'], {
          cwd: root,
          env: { ...process.env, NO_COLOR: '1' },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
        60_000,
      );
    await expectRefused(fix, /^crashdiag: The audit log .*audit\.jsonl is a FIFO/);
  }, 70_000);
});

describe('published files of a pipeline the config describes only in part', () => {
  it('clean --pipeline a keeps b\'s report in a\'s staging dir when b\'s final comes from flags, not the config', async () => {
    for (const dir of ['shared', 'a-out', 'b-stg']) await fsp.mkdir(join(root, dir));
    await writeConfig({
      pipelines: {
        a: { outDir: 'a-out', stagingDir: 'shared', final: 'a_{date}.csv' },
        // b is run as `--pipeline b --final 'report.{date}.csv'`: the config does not say its names.
        b: { outDir: 'shared', stagingDir: 'b-stg' },
      },
    });
    // Run key 4242 of b, and also a's run key "report" written by PID 4242 (a number that can be a PID).
    await put(join(root, 'shared', 'report.4242.csv'), 'published by b\n', now, 3 * DAY);
    await put(join(root, 'shared', 'report.4242.csv.success'), '', now, 3 * DAY);
    const before = await treeOf(root);
    const cleaned = await crashdiag(['clean', '--pipeline', 'a', '--json']);
    expect(cleaned.stderr).toBe('');
    expect(cleaned.code).toBe(0);
    const report = JSON.parse(cleaned.stdout).pipelines[0];
    expect(report.removed).toEqual([]);
    expect(report.kept[0].reason).toMatch(/pipeline b/);
    const fixed = await crashdiag(['diagnose', 'report', '--pipeline', 'a', '--fix', '--json']);
    expect(fixed.stderr).not.toMatch(/unexpected error/);
    expect(fixed.stdout).not.toMatch(/"result": "deleted"/);
    expect(await treeOf(root)).toEqual(before);
    const seen = JSON.parse((await crashdiag(['diagnose', 'report', '--pipeline', 'a', '--json'])).stdout);
    expect(seen.orphans).toEqual([]);
    expect(JSON.stringify(seen.anomalies)).toMatch(/pipeline b publishes into this directory/);
  });

  it('--pipeline a with --out-dir and --staging-dir flags still keeps what a publishes where the config says', async () => {
    for (const dir of ['out', 'stg', 'elsewhere']) await fsp.mkdir(join(root, dir));
    await writeConfig({ pipelines: { a: { outDir: 'out', stagingDir: 'stg', final: '{date}.csv' } } });
    // Run key K.<pid>, published by a under its configured final '{date}.csv': it fits '{date}.{pid}.csv' too.
    const name = `${K}.${deadPid()}.csv`;
    await put(join(root, 'out', name), 'published by a\n', now, 3 * DAY);
    await put(join(root, 'out', `${name}.success`), '', now, 3 * DAY);
    const before = await treeOf(root);
    const flags = ['--pipeline', 'a', '--out-dir', 'elsewhere', '--staging-dir', 'out'];
    const cleaned = await crashdiag(['clean', ...flags, '--json']);
    expect(cleaned.code).toBe(0);
    expect(JSON.parse(cleaned.stdout).pipelines[0].removed).toEqual([]);
    const fixed = await crashdiag(['diagnose', K, ...flags, '--fix', '--json']);
    expect(fixed.stderr).not.toMatch(/unexpected error/);
    expect(fixed.stdout).not.toMatch(/"result": "deleted"/);
    // The same with only the final overridden, staging named by flag as a's out-dir.
    const renamed = ['--pipeline', 'a', '--final', 'x_{date}.csv', '--staging-dir', 'out'];
    expect((await crashdiag(['clean', ...renamed])).code).toBe(0);
    expect(await treeOf(root)).toEqual(before);
  });
});

describe.skipIf(noBindMount !== undefined)('crashdiag\'s state directory is an output directory under another name', () => {
  // out/ bind-mounted on stg/.crashdiag, where the lock goes; final '{date}.lock' names K's output K.lock.
  async function lockNamedOutput(): Promise<string[]> {
    for (const dir of ['out', 'stg', 'stg/.crashdiag']) await fsp.mkdir(join(root, dir));
    await put(join(root, 'out', `${K}.lock`), 'published, named like a lock\n', now, 2 * DAY);
    await put(join(root, 'out', `${K}.lock.success`), '', now, 2 * DAY);
    await put(join(root, 'stg', `${K}.${deadPid()}.csv`), 'half', now, 2 * DAY);
    return ['--out-dir', 'out', '--staging-dir', 'stg', '--final', '{date}.lock', '--audit-log', 'audit.jsonl'];
  }
  const refusal = /^crashdiag: The lock file .* is inside the output directory .*; crashdiag never writes there, and nothing was changed\.\n/;

  it('diagnose --fix with out bind-mounted on stg/.crashdiag is refused, and the output named K.lock stays', async () => {
    const layout = await lockNamedOutput();
    const fix = () => withBindMount(join(root, 'out'), join(root, 'stg', '.crashdiag'), ['diagnose', K, ...layout, '--fix']);
    await expectRefused(fix, refusal);
    expect(await fsp.readFile(join(root, 'out', `${K}.lock`), 'utf8')).toBe('published, named like a lock\n');
  });

  it('clean with out bind-mounted on stg/.crashdiag is refused', async () => {
    const layout = (await lockNamedOutput()).map((flag) => (flag === '{date}.lock' ? '.clean.lock' : flag));
    await put(join(root, 'out', '.clean.lock'), 'published, named like the janitor\'s lock\n', now, 2 * DAY);
    const clean = () => withBindMount(join(root, 'out'), join(root, 'stg', '.crashdiag'), ['clean', ...layout]);
    await expectRefused(clean, refusal);
  });
});

describe('--quarantine reached by a symlink', () => {
  it('a quarantine that is a dangling symlink into the output directory is one sentence, exit 2, nothing moved', async () => {
    const layout = await dRace();
    await fsp.mkdir(join(root, 'stg', '.crashdiag'));
    await fsp.symlink(join(root, 'out', 'q'), join(root, 'qlink'));
    for (const quarantine of ['qlink', 'qlink/sub']) {
      await expectRefused(
        () => crashdiag(['diagnose', K, ...layout, '--fix', '--quarantine', quarantine]),
        /^crashdiag: --quarantine .*qlink.* cannot be created/,
        // The audit log, checked first, may be created empty in crashdiag's own directory.
        ['.crashdiag'],
      );
    }
  });

  it('a quarantine through a symlink to a directory inside the output directory is refused', async () => {
    const layout = await dRace();
    await fsp.mkdir(join(root, 'stg', '.crashdiag'));
    await fsp.mkdir(join(root, 'out', 'q'));
    await fsp.symlink(join(root, 'out', 'q'), join(root, 'qlink'));
    await expectRefused(
      () => crashdiag(['diagnose', K, ...layout, '--fix', '--quarantine', 'qlink/sub']),
      /^crashdiag: --quarantine .* overlaps the output directory/,
      ['.crashdiag'],
    );
  });
});

describe('markers that carry the run key', () => {
  it('scan reads a marker {date}.{final} as K\'s marker, not K as unpublished', async () => {
    for (const dir of ['out', 'stg']) await fsp.mkdir(join(root, dir));
    await put(join(root, 'out', `r_${K}.csv`), 'id\n', now, DAY);
    await put(join(root, 'out', `${K}.r_${K}.csv`), '', now, DAY);
    const layout = ['--out-dir', 'out', '--staging-dir', 'stg', '--final', 'r_{date}.csv', '--marker', '{date}.{final}'];
    expect(JSON.parse((await crashdiag(['diagnose', K, ...layout, '--json'])).stdout).state).toBe('DONE');
    const scanned = await crashdiag(['scan', ...layout, '--json']);
    expect(scanned.stderr).toBe('');
    expect(scanned.code).toBe(0);
    expect(JSON.stringify(JSON.parse(scanned.stdout))).not.toMatch(/UNPUBLISHED|UNKNOWN/);
  });

  it('clean --all keeps b\'s marker {final}.{date} of a fixed-name output, which a\'s staging template also fits', async () => {
    for (const dir of ['shared', 'a-out', 'b-stg']) await fsp.mkdir(join(root, dir));
    await writeConfig({
      pipelines: {
        a: { outDir: 'a-out', stagingDir: 'shared', final: 'a_{date}.csv', staging: '{date}.{pid}' },
        b: { outDir: 'shared', stagingDir: 'b-stg', final: 'latest.csv', marker: '{final}.{date}' },
      },
    });
    // b's batch numbers are its run keys; batch <n>'s marker reads to a as key latest.csv, PID <n>.
    const batch = deadPid();
    await put(join(root, 'shared', 'latest.csv'), 'published by b\n', now, 3 * DAY);
    await put(join(root, 'shared', `latest.csv.${batch}`), '', now, 3 * DAY);
    const before = await treeOf(root);
    const cleaned = await crashdiag(['clean', '--all', '--json']);
    expect(cleaned.stderr).toBe('');
    expect(cleaned.code).toBe(0);
    expect(JSON.parse(cleaned.stdout).pipelines.flatMap((p: { removed: unknown[] }) => p.removed)).toEqual([]);
    const fixed = await crashdiag(['diagnose', 'latest.csv', '--pipeline', 'a', '--fix', '--json']);
    expect(fixed.stdout).not.toMatch(/"result": "deleted"/);
    expect(await treeOf(root)).toEqual(before);
  });
});

describe('the staging directory re-pointed between the listing and the removal', () => {
  let name: string;
  let swung: boolean;
  let attacker: (args: readonly string[]) => Promise<InProcessRun>;
  beforeEach(async () => {
    for (const dir of ['out', 'stg-a', 'a-out']) await fsp.mkdir(join(root, dir));
    // The orphan in stg-a and a published output in out (run key K.<pid>, final '{date}.csv') share one name.
    name = `${K}.${deadPid()}.csv`;
    await put(join(root, 'stg-a', name), 'orphan', now, 3 * DAY);
    await put(join(root, 'out', name), 'published\n', now, 3 * DAY);
    await put(join(root, 'out', `${name}.success`), '', now, 3 * DAY);
    await fsp.mkdir(join(root, 'stg-a', '.crashdiag'));
    const link = join(root, 'stg');
    symlinkSync(join(root, 'stg-a'), link);
    // A deploy swings the link the moment a staging file is first looked at: after the listing.
    swung = false;
    const swing = (path: string) => {
      if (swung || !path.endsWith(name)) return;
      swung = true;
      unlinkSync(link);
      symlinkSync(join(root, 'out'), link);
    };
    const fs = swingingAtLstat(swing);
    attacker = (args: readonly string[]) => crashdiagInProcess(args, root, { fs, user: 'attacker' });
  });
  const layout = ['--out-dir', 'a-out', '--staging-dir', 'stg', '--final', 'r_{date}.csv'];

  it('clean through a symlinked staging dir removes nothing from the out-dir the symlink is swung to mid-run', async () => {
    const out = await treeOf(join(root, 'out'));
    await attacker(['clean', ...layout, '--json']);
    expect(swung).toBe(true);
    expect(await treeOf(join(root, 'out'))).toEqual(out);
  });

  // Held: the lock, read again through the swung path before the unlink, is no longer ours.
  it('diagnose --fix through a symlinked staging dir swung mid-run removes nothing from that out-dir', async () => {
    const out = await treeOf(join(root, 'out'));
    await attacker(['diagnose', K, ...layout, '--fix', '--json']);
    expect(swung).toBe(true);
    expect(await treeOf(join(root, 'out'))).toEqual(out);
  });
});

describe('--prom-file through a symlinked directory swung during the scan', () => {
  it('the metrics file goes where it was checked, never over a published output of the same name', async () => {
    for (const dir of ['out', 'stg', 'metrics']) await fsp.mkdir(join(root, dir));
    await put(join(root, 'out', `r_${K}.csv`), 'id,amount\n1,10\n', now, 2 * DAY);
    await put(join(root, 'out', `r_${K}.csv.success`), '', now, 2 * DAY);
    const link = join(root, 'textfile');
    symlinkSync(join(root, 'metrics'), link);
    // The link is swung to the out-dir once the scan lists the staging directory: after every check.
    let swung = false;
    const fs: FileSystem = {
      ...fsp,
      lstatSync,
      opendir: ((path: string, ...rest: []) => {
        if (!swung && path === join(root, 'stg')) {
          swung = true;
          unlinkSync(link);
          symlinkSync(join(root, 'out'), link);
        }
        return fsp.opendir(path, ...rest);
      }) as FileSystem['opendir'],
    };
    const attacker = (args: readonly string[]) => crashdiagInProcess(args, root, { fs, user: 'attacker' });
    const out = await treeOf(join(root, 'out'));
    const layout = ['--out-dir', 'out', '--staging-dir', 'stg', '--final', 'r_{date}.csv'];
    await attacker(['scan', ...layout, '--format', 'prom', '--prom-file', `textfile/r_${K}.csv`]);
    expect(swung).toBe(true);
    expect(await treeOf(join(root, 'out'))).toEqual(out);
  });
});

describe('--audit-log through a symlinked directory swung during the fix', () => {
  it('the records go where the log was checked, never onto a published output of the same name', async () => {
    const layout = await dRace();
    await fsp.mkdir(join(root, 'logs-a'));
    await fsp.mkdir(join(root, 'stg', '.crashdiag'));
    const link = join(root, 'logs');
    symlinkSync(join(root, 'logs-a'), link);
    // Swung to the out-dir when the fix first looks at the orphan: after the audit log was checked.
    let swung = false;
    const swing = (path: string) => {
      if (swung || !path.includes(`${join(root, 'stg')}/${K}.`)) return;
      swung = true;
      unlinkSync(link);
      symlinkSync(join(root, 'out'), link);
    };
    const fs = swingingAtLstat(swing);
    const attacker = (args: readonly string[]) => crashdiagInProcess(args, root, { fs, user: 'attacker' });
    const out = await treeOf(join(root, 'out'));
    await attacker(['diagnose', K, ...layout, '--fix', '--audit-log', `logs/r_${K}.csv`]);
    expect(swung).toBe(true);
    expect(await treeOf(join(root, 'out'))).toEqual(out);
  });
});

describe('pipelines that read one staging name as two different writers', () => {
  it('--pipeline a --fix keeps the in-flight file that b ({date}.{host}.{pid}.csv) calls RUNNING on another host', async () => {
    for (const dir of ['stg', 'a-out', 'b-out']) await fsp.mkdir(join(root, dir));
    await writeConfig({
      pipelines: {
        a: { outDir: 'a-out', stagingDir: 'stg', final: 'a_{date}.csv' },
        b: { outDir: 'b-out', stagingDir: 'stg', final: 'b_{date}.csv', staging: '{date}.{host}.{pid}.csv' },
      },
    });
    // b's writer runs on otherhost; to a the name reads as run K.otherhost, PID <n> here, where <n> is dead.
    const inFlight = join(root, 'stg', `${K}.otherhost.${deadPid()}.csv`);
    await fsp.writeFile(inFlight, 'b, half written\n');
    const b = JSON.parse((await crashdiag(['diagnose', K, '--pipeline', 'b', '--json'])).stdout);
    expect(b.state).toBe('RUNNING');
    // scan --pipeline a lists the file under run K.otherhost: the operator follows it.
    const a = JSON.parse((await crashdiag(['diagnose', `${K}.otherhost`, '--pipeline', 'a', '--json'])).stdout);
    expect(a.state).toBe('RUNNING');
    const before = await treeOf(root);
    const fixed = await crashdiag(['diagnose', `${K}.otherhost`, '--pipeline', 'a', '--fix', '--json']);
    expect(fixed.stderr).not.toMatch(/unexpected error/);
    expect(fixed.stdout).not.toMatch(/"result": "deleted"/);
    expect(await treeOf(root)).toEqual(before);
  });
});

describe('crashdiag pipelines and pipelines the config describes only in part', () => {
  it('warns about a pipeline whose out-dir comes from flags: no other pipeline can keep its outputs', async () => {
    await writeConfig({
      pipelines: {
        a: { outDir: 'a-out', stagingDir: 'shared', final: 'a_{date}.csv' },
        b: { stagingDir: 'b-stg', final: 'report.{date}.csv' },
      },
    });
    const listed = await crashdiag(['pipelines']);
    expect(listed.code).toBe(0);
    const warnings = listed.stdout.split('\n').filter((line) => line.startsWith('warning:'));
    expect(warnings).toEqual([expect.stringMatching(/^warning: pipeline b leaves its out-dir to flags: /)]);
  });
});

describe('attacks that hold', () => {
  it('--prom-file naming a hard link to a published output is refused, and the output keeps its bytes', async () => {
    await dRace();
    await fsp.link(join(root, 'out', `r_${K}.csv`), join(root, 'metrics.prom'));
    const layout = ['--out-dir', 'out', '--staging-dir', 'stg', '--final', 'r_{date}.csv'];
    await expectRefused(
      () => crashdiag(['scan', ...layout, '--format', 'prom', '--prom-file', 'metrics.prom']),
      /^crashdiag: Cannot write the metrics file .*metrics\.prom: it is a file crashdiag did not write/,
    );
  });

  it('--prom-file inside the out-dir is refused with a hint about metrics files, not the audit log\'s default place', async () => {
    const layout = await dRace();
    await expectRefused(
      () => crashdiag(['scan', ...layout, '--format', 'prom', '--prom-file', 'out/crashdiag.prom']),
      /^crashdiag: The metrics file .* is inside the output directory .*\n {2}Give --prom-file a path outside every output directory/,
    );
  });

  it.skipIf(noBindMount !== undefined)('--prom-file in a directory that is the out-dir through a bind mount is refused', async () => {
    await dRace();
    await fsp.mkdir(join(root, 'textfile'));
    const layout = ['--out-dir', 'out', '--staging-dir', 'stg', '--final', 'r_{date}.csv'];
    await expectRefused(
      () => withBindMount(join(root, 'out'), join(root, 'textfile'), [
        'scan', ...layout, '--format', 'prom', '--prom-file', `textfile/r_${K}.csv`,
      ]),
      /^crashdiag: The metrics file .* is inside the output directory /,
    );
  });

  it('clean --all across a staging dir nested in an out-dir and an out-dir nested in a staging dir keeps every published file', async () => {
    for (const dir of ['out/_stg', 'stg/out', 'cfg']) await fsp.mkdir(join(root, dir), { recursive: true });
    // Paths with '..', '.' and trailing slashes, relative to the config file in cfg/.
    await fsp.writeFile(
      join(root, 'cfg', 'crashdiag.config.json'),
      JSON.stringify({
        pipelines: {
          nested: { outDir: '../out/', stagingDir: '../out/_stg/.', final: '{date}.csv' },
          outer: { outDir: '../stg/out/../out', stagingDir: '../stg', final: '{date}.csv' },
          peer: { outDir: '../out/_stg', stagingDir: '../stg/out', final: 'p_{date}.csv' },
        },
      }),
    );
    // Published names that fit the default staging template {date}.{pid}.csv of the pipeline staging there.
    for (const dir of ['out', 'stg/out']) {
      const name = `${K}.${deadPid()}.csv`;
      await put(join(root, dir, name), `published in ${dir}\n`, now, 3 * DAY);
      await put(join(root, dir, `${name}.success`), '', now, 3 * DAY);
    }
    await put(join(root, 'out', '_stg', `p_${K}.csv`), 'published by peer\n', now, 3 * DAY);
    await put(join(root, 'out', '_stg', `p_${K}.csv.success`), '', now, 3 * DAY);
    const before = await treeOf(root);
    const cleaned = await crashdiag(['clean', '--all', '--config', 'cfg/crashdiag.config.json', '--json']);
    expect(cleaned.stderr).toBe('');
    expect(cleaned.code).toBe(0);
    expect(await treeOf(root)).toEqual(before);
  });
});
