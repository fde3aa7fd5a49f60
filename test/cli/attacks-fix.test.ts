// Attacks on `diagnose --fix` (issue 9): the guards, the permission checks,
// the quarantine and the re-run decision, tried on real directories, through
// `run(argv, io)` in process (where the attack must strike at an exact moment,
// the file system is wrapped to act there) or the built bin as another user.
// Each test is named after its attack; where nothing may change, the disk is
// compared byte for byte.
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultAuditLog } from '../../src/core/audit.js';
import type { FileSystem } from '../../src/core/fs.js';
import type { Identity } from '../../src/core/permission.js';
import { collectOutput, type Exited, useBuiltBin } from '../support/built-bin.js';
import { deadPids } from '../support/dead-pids.js';
import { age, exists } from '../support/disk.js';
import { treeOf } from '../support/file-tree.js';
import { NOBODY } from '../support/identity.js';
import {
  finalPathFor,
  HOUR_MS,
  KEY,
  markerPathFor,
  plantOrphans,
  publish,
  stagingPathFor,
} from '../support/pipeline-files.js';
import { type Layout, useTempLayout } from '../support/temp-layout.js';
import { crashdiagInProcess } from '../support/in-process.js';

let root: string;
let layout: Layout;
useTempLayout('crashdiag-attack-', (made) => {
  layout = made;
  root = made.root;
});
const built = useBuiltBin();

function layoutFlags(): string[] {
  return ['--out-dir', layout.outDir, '--staging-dir', layout.stagingDir, '--final', 'report_{date}.csv'];
}

interface InProcess {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Each re-run started, by argv. */
  readonly reruns: ReadonlyArray<readonly string[]>;
}

/** `crashdiag diagnose KEY <layout> --fix ...` in process, on the real disk through `fs` (wrapped by the attack). */
async function fixInProcess(
  args: readonly string[],
  options: { fs?: FileSystem; identity?: Identity; rerun?: () => Promise<void>; flags?: readonly string[] } = {},
): Promise<InProcess> {
  const reruns: Array<readonly string[]> = [];
  const words = ['diagnose', KEY, ...(options.flags ?? layoutFlags()), '--fix', ...args];
  const result = await crashdiagInProcess(words, root, {
    ...(options.fs ? { fs: options.fs } : {}),
    runCommand: async (argv) => {
      reruns.push(argv);
      await options.rerun?.();
      return { exitStatus: 0, signal: null };
    },
    user: 'attacker-test',
    identity: options.identity ?? { uid: 0, gid: 0, groups: [] },
  });
  return { ...result, reruns };
}

function outOf(result: { code: number | null; stdout: string; stderr: string }): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

/** No stack, no "unexpected error": what a user-facing problem must never print. */
function expectNoStack(result: { stderr: string; stdout: string }): void {
  expect(result.stderr).not.toMatch(/unexpected error|\n\s+at /);
  expect(result.stdout).not.toMatch(/\n\s+at /);
}

interface AuditLine {
  op: string;
  path?: string;
  to?: string;
  reason?: string;
}

/** The outcomes on record: the intent written ahead of each removal is tested in audit.test.ts. */
function auditLines(): AuditLine[] {
  const path = defaultAuditLog(layout.stagingDir);
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as AuditLine)
      .filter((record) => record.op !== 'intent');
  } catch {
    return [];
  }
}

/** The built bin as nobody, in no supplementary group (or in `groups`): the kernel's permission checks apply. */
function binAsNobody(args: readonly string[], groups: readonly number[] = []): Promise<Exited> {
  const who = groups.length > 0 ? [`--groups=${groups.join(',')}`] : ['--clear-groups'];
  const child = spawn(
    'setpriv',
    [`--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, ...who, process.execPath, built.bin, ...args],
    { cwd: root, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return collectOutput(child, 40_000);
}

/** The root of the temp layout and the bin reachable by nobody; staging shared as /tmp is. */
async function openToNobody(): Promise<void> {
  await fs.chmod(join(built.bin, '..', '..'), 0o755);
  for (const dir of [root, layout.outDir]) await fs.chmod(dir, 0o755);
  await fs.chmod(layout.stagingDir, 0o1777);
}

async function ownedByNobody(paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    const { atime, mtime } = await fs.stat(path);
    await fs.chown(path, NOBODY.uid, NOBODY.gid);
    await fs.utimes(path, atime, mtime);
  }
}

describe('attacks on --quarantine', () => {
  it('attack: --quarantine naming the output directory where nothing is to move (A/B/C): still exit 2, nothing created', async () => {
    const before = await treeOf(root);
    const result = await fixInProcess(['--quarantine', layout.outDir, '--rerun', 'job {date}']);
    expectNoStack(result);
    expect(result.code, outOf(result)).toBe(2);
    expect(result.stderr).toMatch(/^crashdiag: --quarantine .* overlaps the output directory/);
    expect(result.reruns).toEqual([]);
    // crashdiag's own lock directory aside (made to take the lock), the disk is as it was: no audit log either.
    expect(await treeOf(root)).toEqual(before);
    expect(await exists(join(layout.stagingDir, '.crashdiag', 'audit.jsonl'))).toBe(false);
  });

  it('attack: --quarantine naming the output directory with an orphan to move: exit 2, and no audit log left behind', async () => {
    await plantOrphans(layout, 1);
    const before = await treeOf(root);
    const result = await fixInProcess(['--quarantine', layout.outDir]);
    expect(result.code, outOf(result)).toBe(2);
    expect(await treeOf(root)).toEqual(before);
    expect(await exists(join(layout.stagingDir, '.crashdiag', 'audit.jsonl'))).toBe(false);
  });

  it('attack: a --quarantine under a directory nobody may search: exit 2, one sentence, the disk unchanged', async () => {
    await openToNobody();
    const orphans = await plantOrphans(layout, 2);
    await ownedByNobody(orphans);
    await fs.mkdir(join(root, 'private', 'q'), { recursive: true });
    await fs.chmod(join(root, 'private'), 0o700);
    const before = await treeOf(root);
    for (const extra of [[], ['--dry-run']]) {
      const result = await binAsNobody(['diagnose', KEY, ...layoutFlags(), '--fix', '--quarantine', 'private/q', ...extra]);
      expect(result.code, outOf(result)).toBe(2);
      expectNoStack(result);
      expect(result.stderr).toContain(`--quarantine ${join(root, 'private', 'q')} cannot be looked at (EACCES)`);
    }
    expect(await treeOf(root)).toEqual(before);
  });

  it('attack: a --quarantine that is a symlink loop: exit 2, one sentence, the disk unchanged', async () => {
    const orphans = await plantOrphans(layout, 1);
    await fs.symlink('loop', join(root, 'loop'));
    const before = await treeOf(root);
    for (const q of ['loop', 'loop/q']) {
      const result = await fixInProcess(['--quarantine', q]);
      expect(result.code, outOf(result)).toBe(2);
      expectNoStack(result);
      expect(result.stderr).toContain('(ELOOP)');
    }
    expect(await treeOf(root)).toEqual(before);
    expect(await exists(orphans[0] as string)).toBe(true);
  });

  it('attack: a drop-box quarantine (mode 0733: nobody may add, not list): each move is reported and audited as a move', async () => {
    await openToNobody();
    const orphans = await plantOrphans(layout, 2);
    await ownedByNobody(orphans);
    const quarantine = join(root, 'dropbox');
    await fs.mkdir(quarantine);
    await fs.chmod(quarantine, 0o733);
    const result = await binAsNobody(['diagnose', KEY, ...layoutFlags(), '--fix', '--quarantine', quarantine, '--json']);
    expect(result.code, outOf(result)).toBe(10);
    const report = JSON.parse(result.stdout) as { fix: { steps: Array<{ result: string; to?: string }> } };
    const moved = orphans.map((path) => join(quarantine, path.slice(layout.stagingDir.length + 1)));
    expect(report.fix.steps.map((s) => [s.result, s.to])).toEqual(moved.map((to) => ['quarantined', to]));
    for (const path of orphans) expect(await exists(path)).toBe(false);
    for (const path of moved) expect(await exists(path)).toBe(true);
    expect(auditLines().map((r) => [r.op, r.to])).toEqual(moved.map((to) => ['quarantine', to]));
  });
});

/** The real file system, except that `hook` runs right before the first call of `method` on `path`. */
function strikeBefore(method: 'unlink' | 'link', path: string, hook: () => Promise<void>): FileSystem {
  let struck = false;
  const real = { ...fs, lstatSync };
  const strike = async (target: unknown) => {
    if (!struck && String(target) === path) {
      struck = true;
      await hook();
    }
  };
  return {
    ...real,
    unlink: async (target) => {
      if (method === 'unlink') await strike(target);
      return fs.unlink(target);
    },
    link: async (from, to) => {
      if (method === 'link') await strike(from);
      return fs.link(from, to);
    },
  };
}

describe('attacks between the last check and the removal', () => {
  it('attack: the staging symlink is turned to the output directory right before the unlink: the published file of the same name survives', async () => {
    // Final '{date}.csv': run key K.<pid> publishes out/K.<pid>.csv, the very name of K's orphan of PID <pid>.
    const [orphan] = (await plantOrphans(layout, 1)) as [string];
    const name = orphan.slice(layout.stagingDir.length + 1);
    const published = join(layout.outDir, name);
    await fs.writeFile(published, 'published rows\n');
    await fs.writeFile(`${published}.success`, '');
    const link = join(root, 'stg');
    await fs.symlink(layout.stagingDir, link);
    const flags = ['--out-dir', layout.outDir, '--staging-dir', link, '--final', '{date}.csv'];
    const outBefore = await treeOf(layout.outDir);
    const result = await fixInProcess(['--json'], {
      flags,
      fs: strikeBefore('unlink', join(link, name), async () => {
        await fs.unlink(link);
        await fs.symlink(layout.outDir, link);
      }),
    });
    expectNoStack(result);
    expect(await treeOf(layout.outDir)).toEqual(outBefore);
    expect(readFileSync(published, 'utf8')).toBe('published rows\n');
    // The orphan itself, in the staging directory the fix resolved, is what went.
    expect(await exists(orphan)).toBe(false);
  });

  it('attack: the orphan is swapped for a symlink to the published output when the move must copy: the output is not copied, the step is not a move', async () => {
    await publish(layout);
    const [orphan] = (await plantOrphans(layout, 1)) as [string];
    const quarantine = join(root, 'q');
    const copy = join(quarantine, orphan.slice(layout.stagingDir.length + 1));
    const outBefore = await treeOf(layout.outDir);
    const real = { ...fs, lstatSync };
    let swapped = false;
    const result = await fixInProcess(['--json', '--quarantine', quarantine], {
      fs: {
        ...real,
        // The quarantine is on another file system (EXDEV), and the attacker strikes right then.
        link: async (from, to) => {
          if (String(from) !== orphan) return fs.link(from, to);
          if (!swapped) {
            swapped = true;
            await fs.rename(orphan, join(root, 'kept-by-attacker'));
            await fs.symlink(finalPathFor(layout), orphan);
          }
          throw Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV' });
        },
      },
    });
    expectNoStack(result);
    expect(await treeOf(layout.outDir)).toEqual(outBefore);
    const report = JSON.parse(result.stdout) as { fix: { steps: Array<{ result: string }> } };
    expect(report.fix.steps.map((s) => s.result)).not.toContain('quarantined');
    if (await exists(copy)) expect(readFileSync(copy, 'utf8')).not.toBe(readFileSync(finalPathFor(layout), 'utf8'));
    expect(auditLines().map((r) => r.op)).not.toContain('quarantine');
    expect(report.fix.steps.map((s) => s.result)).toEqual(['left-alone']);
  });

  it('attack: the orphan is swapped for a FIFO when the move must copy: the fix neither hangs nor moves it, and re-runs nothing', async () => {
    const [orphan] = (await plantOrphans(layout, 1)) as [string];
    const quarantine = join(root, 'q');
    const real = { ...fs, lstatSync };
    const result = await fixInProcess(['--json', '--quarantine', quarantine, '--rerun', 'job {date}'], {
      fs: {
        ...real,
        link: async (from, to) => {
          if (String(from) !== orphan) return fs.link(from, to);
          if (!(await exists(join(root, 'kept-by-attacker')))) {
            await fs.rename(orphan, join(root, 'kept-by-attacker'));
            expect(spawnSync('mkfifo', [orphan]).status).toBe(0);
          }
          throw Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV' });
        },
      },
    });
    expectNoStack(result);
    const report = JSON.parse(result.stdout) as { fix: { steps: Array<{ result: string }> } };
    expect(report.fix.steps.map((s) => s.result)).toEqual(['left-alone']);
    expect(result.reruns).toEqual([]);
    expect(await fs.readdir(quarantine)).toEqual([]);
    expect(readFileSync(join(root, 'kept-by-attacker'), 'utf8')).toBe('partial 0\n');
  });
});

describe('attacks on the last look', () => {
  it('attack: an orphan rewritten in place (same size) with its old mtime put back after the check (rsync --inplace -t): left alone, no re-run', async () => {
    const [first, second] = (await plantOrphans(layout, 2)) as [string, string];
    const rewritten = 'written 1\n';
    expect(rewritten.length).toBe(readFileSync(second, 'utf8').length);
    const result = await fixInProcess(['--json', '--rerun', 'job {date}'], {
      fs: strikeBefore('unlink', first, async () => {
        const { atime, mtime } = await fs.stat(second);
        await fs.writeFile(second, rewritten);
        await fs.utimes(second, atime, mtime);
      }),
    });
    expectNoStack(result);
    expect(readFileSync(second, 'utf8')).toBe(rewritten);
    const report = JSON.parse(result.stdout) as { fix: { steps: Array<{ result: string; reason?: string }> } };
    expect(report.fix.steps.map((s) => s.result)).toEqual(['deleted', 'left-alone']);
    expect(report.fix.steps[1]?.reason).toBe('it changed since it was checked: someone is writing it');
    expect(result.reruns).toEqual([]);
  });

  it('held: a new dead orphan appears while the others go: nothing is re-run, the new one stays', async () => {
    const [first] = (await plantOrphans(layout, 2)) as [string, string];
    let late = '';
    // Three dead writers would be a crash loop, never re-run anyway: counting is off here.
    const result = await fixInProcess(['--json', '--max-attempts', '0', '--rerun', 'job {date}'], {
      fs: strikeBefore('unlink', first, async () => {
        [late] = (await plantOrphans(layout, 1)) as [string];
      }),
    });
    expectNoStack(result);
    expect(result.reruns).toEqual([]);
    expect(await exists(late)).toBe(true);
    const report = JSON.parse(result.stdout) as { state: string; fix: { rerunSkipped: string | null } };
    expect(report.fix.rerunSkipped).toMatch(/^the run is D now, not A\/B\/C/);
    expect(report.state).toBe('D');
  });
});

describe('the copy into quarantine across file systems', () => {
  it('held: a 3 MiB orphan (several chunks) arrives byte for byte, with its mode and mtime', async () => {
    const [orphan] = (await plantOrphans(layout, 1)) as [string];
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 251;
    await fs.writeFile(orphan, bytes);
    await fs.chmod(orphan, 0o640);
    await age(orphan, Date.now(), 2 * HOUR_MS);
    const before = await fs.stat(orphan);
    const quarantine = join(root, 'q');
    const result = await fixInProcess(['--json', '--quarantine', quarantine], {
      fs: {
        ...fs,
        lstatSync,
        link: async (from, to) => {
          if (String(from) === orphan) throw Object.assign(new Error('EXDEV'), { code: 'EXDEV' });
          return fs.link(from, to);
        },
      },
    });
    expect(result.code, outOf(result)).toBe(10);
    const copy = join(quarantine, orphan.slice(layout.stagingDir.length + 1));
    expect(readFileSync(copy).equals(bytes)).toBe(true);
    const after = await fs.stat(copy);
    expect(after.mode & 0o777).toBe(0o640);
    expect(Math.abs(after.mtimeMs - before.mtimeMs)).toBeLessThan(1);
    expect(await exists(orphan)).toBe(false);
  });
});

describe('attacks on a quarantine directory still to be created', () => {
  /** The real file system, except that `plant` runs right before crashdiag creates `dir`. */
  function plantBeforeMkdir(dir: string, plant: () => Promise<void>): FileSystem {
    let planted = false;
    return {
      ...fs,
      lstatSync,
      mkdir: (async (path: string, options?: Parameters<typeof fs.mkdir>[1]) => {
        if (!planted && path === dir) {
          planted = true;
          await plant();
        }
        return fs.mkdir(path, options);
      }) as FileSystem['mkdir'],
    };
  }

  it.each([
    ['a symlink to the output directory', 'overlaps the output directory'],
    ['a symlink to a directory of theirs', `uid ${NOBODY.uid} may replace it`],
    ['a directory of theirs', `uid ${NOBODY.uid} may replace it`],
  ])('attack: another user creates it first in a shared sticky directory, as %s, between the checks and its creation: exit 2, nothing moved', async (what, why) => {
    const orphans = await plantOrphans(layout, 2);
    await publish(layout);
    const shared = join(root, 'shared');
    await fs.mkdir(shared);
    await fs.chmod(shared, 0o1777);
    const quarantine = join(shared, 'q');
    const theirs = join(root, 'theirs');
    await fs.mkdir(theirs);
    await fs.chown(theirs, NOBODY.uid, NOBODY.gid);
    const before = await treeOf(root);
    const plant = async () => {
      if (what === 'a directory of theirs') await fs.mkdir(quarantine);
      else await fs.symlink(what.includes('output') ? layout.outDir : theirs, quarantine);
      await fs.lchown(quarantine, NOBODY.uid, NOBODY.gid);
    };
    const result = await fixInProcess(['--quarantine', quarantine], { fs: plantBeforeMkdir(quarantine, plant) });
    expect(result.code, outOf(result)).toBe(2);
    expectNoStack(result);
    expect(result.stderr).toContain(why);
    for (const path of orphans) expect(await exists(path)).toBe(true);
    await fs.rm(quarantine, { recursive: true });
    expect(await treeOf(root)).toEqual(before);
  });
});

describe('attacks on the quarantine directory midway', () => {
  async function twoOrphansAndQuarantine(): Promise<{ orphans: [string, string]; quarantine: string }> {
    const orphans = (await plantOrphans(layout, 2)) as [string, string];
    const quarantine = join(root, 'q');
    await fs.mkdir(quarantine);
    return { orphans, quarantine };
  }

  it('attack: the quarantine directory is removed after the first move: the second is not reported as already gone, exit 30, audited', async () => {
    const { orphans, quarantine } = await twoOrphansAndQuarantine();
    const result = await fixInProcess(['--json', '--quarantine', quarantine, '--rerun', 'job {date}'], {
      fs: strikeBefore('link', orphans[1], () => fs.rm(quarantine, { recursive: true })),
    });
    expect(result.code, outOf(result)).toBe(30);
    expectNoStack(result);
    const report = JSON.parse(result.stdout) as { fix: { steps: Array<{ path: string; result: string }> } };
    expect(report.fix.steps.map((s) => s.result)).toEqual(['quarantined', 'failed']);
    expect(await exists(orphans[1])).toBe(true);
    expect(auditLines().map((r) => [r.op, r.path])).toEqual([
      ['quarantine', orphans[0]],
      ['fail', orphans[1]],
    ]);
    expect(result.reruns).toEqual([]);
  });

  it('attack: the quarantine directory is replaced by a file after the first move: exit 30, one sentence, no stack', async () => {
    const { orphans, quarantine } = await twoOrphansAndQuarantine();
    const result = await fixInProcess(['--quarantine', quarantine], {
      fs: strikeBefore('link', orphans[1], async () => {
        await fs.rm(quarantine, { recursive: true });
        await fs.writeFile(quarantine, 'a file now\n');
      }),
    });
    expect(result.code, outOf(result)).toBe(30);
    expectNoStack(result);
    expect(await exists(orphans[1])).toBe(true);
    expect(readFileSync(quarantine, 'utf8')).toBe('a file now\n');
  });

  it('attack: another user, owning the quarantine’s parent, turns it into a symlink to the output directory after the first move: refused up front, exit 2, the disk unchanged', async () => {
    const orphans = (await plantOrphans(layout, 2)) as [string, string];
    await publish(layout);
    const theirs = join(root, 'theirs');
    const quarantine = join(theirs, 'q');
    await fs.mkdir(quarantine, { recursive: true });
    await fs.chown(theirs, NOBODY.uid, NOBODY.gid);
    const before = await treeOf(root);
    let struck = false;
    const swap = async () => {
      // What uid 65534 may do to a directory it owns, whoever runs the fix.
      struck = true;
      await fs.rename(quarantine, join(theirs, 'q-moved'));
      await fs.symlink(layout.outDir, quarantine);
    };
    for (const extra of [['--dry-run'], []]) {
      const result = await fixInProcess(['--quarantine', quarantine, ...extra], { fs: strikeBefore('link', orphans[1], swap) });
      expect(result.code, outOf(result)).toBe(2);
      expectNoStack(result);
      expect(result.stderr).toBe(
        `crashdiag: --quarantine ${quarantine}: uid ${NOBODY.uid} may replace it while files are moved (${theirs} is owned by uid ${NOBODY.uid}); nothing was moved.\n`
        + '  Use a directory that only you and root can change.\n',
      );
    }
    expect(struck).toBe(false);
    expect(await treeOf(root)).toEqual(before);
  });

  it('attack: a quarantine another user made in a shared sticky directory (as /tmp is): refused up front, exit 2, the disk unchanged', async () => {
    await plantOrphans(layout, 1);
    const shared = join(root, 'shared');
    const quarantine = join(shared, 'q');
    await fs.mkdir(quarantine, { recursive: true });
    await fs.chmod(shared, 0o1777);
    await fs.chown(quarantine, NOBODY.uid, NOBODY.gid);
    const before = await treeOf(root);
    const result = await fixInProcess(['--quarantine', quarantine]);
    expect(result.code, outOf(result)).toBe(2);
    expectNoStack(result);
    expect(result.stderr).toContain(`uid ${NOBODY.uid} may replace it while files are moved (${quarantine} is owned by uid ${NOBODY.uid})`);
    expect(await treeOf(root)).toEqual(before);
  });

  it('held: a quarantine crashdiag creates in a shared sticky directory is its own: the orphans move', async () => {
    const orphans = await plantOrphans(layout, 2);
    const shared = join(root, 'shared');
    await fs.mkdir(shared, { mode: 0o1777 });
    await fs.chmod(shared, 0o1777);
    const result = await fixInProcess(['--json', '--quarantine', join(shared, 'q')]);
    expect(result.code, outOf(result)).toBe(10);
    for (const path of orphans) expect(await exists(path)).toBe(false);
    expect((await fs.readdir(join(shared, 'q'))).length).toBe(2);
  });
});

describe('attacks on the re-run decision', () => {
  it('attack: another run republishes the unmarked output while the orphans go: the fresh output is not overwritten by a re-run', async () => {
    // UNPUBLISHED: an output without its marker, and dead orphans.
    await fs.writeFile(finalPathFor(layout), 'old, unmarked\n');
    const orphans = await plantOrphans(layout, 2);
    const result = await fixInProcess(['--json', '--rerun', 'job {date}'], {
      fs: strikeBefore('unlink', orphans[1] as string, async () => {
        // Another run renames its complete output into place; its marker comes next.
        const tmp = join(layout.outDir, '.tmp');
        await fs.writeFile(tmp, 'fresh from another run\n');
        await fs.rename(tmp, finalPathFor(layout));
      }),
    });
    expectNoStack(result);
    expect(result.reruns).toEqual([]);
    expect(readFileSync(finalPathFor(layout), 'utf8')).toBe('fresh from another run\n');
    expect(await exists(markerPathFor(layout))).toBe(false);
    const report = JSON.parse(result.stdout) as { state: string; fix: { rerunSkipped: string | null } };
    expect(report.fix.rerunSkipped).toMatch(/^the run is UNPUBLISHED now, but its output was replaced or rewritten meanwhile/);
    expect(report.state).toBe('UNPUBLISHED');
    expect(auditLines().map((r) => r.op)).toEqual(['delete', 'delete', 'skip']);
  });

  it('held: the unmarked output left as it was: the re-run starts once the orphans are gone', async () => {
    await fs.writeFile(finalPathFor(layout), 'old, unmarked\n');
    await plantOrphans(layout, 2);
    const result = await fixInProcess(['--json', '--rerun', 'job {date}']);
    expect(result.reruns).toEqual([['job', KEY]]);
  });
});

describe('--dry-run and the real run agree', () => {
  it('attack: a removal the real run refuses (another user’s file in a sticky directory): the dry run promises no removal and no re-run', async () => {
    await openToNobody();
    const orphans = (await plantOrphans(layout, 2)) as [string, string];
    await ownedByNobody([orphans[0]]);
    const before = await treeOf(root);
    const human = await binAsNobody(['diagnose', KEY, ...layoutFlags(), '--fix', '--dry-run', '--rerun', 'job {date}']);
    expect(human.stdout).toContain(`refused ${orphans[1]}: permission denied`);
    expect(human.stdout).not.toContain('would remove');
    expect(human.stdout).not.toContain('would re-run');
    expect(human.stdout).toContain('nothing would be removed');
    const json = await binAsNobody(['diagnose', KEY, ...layoutFlags(), '--fix', '--dry-run', '--json', '--rerun', 'job {date}']);
    type Plan = { fix: { steps: unknown[]; rerun: unknown; refused: Array<{ path: string }> } };
    const report = JSON.parse(json.stdout) as Plan;
    expect(report.fix.refused.map((r) => r.path)).toEqual([orphans[1]]);
    expect(report.fix.steps).toEqual([]);
    expect(report.fix.rerun).toBeNull();
    const real = await binAsNobody(['diagnose', KEY, ...layoutFlags(), '--fix', '--json', '--rerun', 'job {date}']);
    expect(real.code, outOf(real)).toBe(30);
    const done = JSON.parse(real.stdout) as { fix: { steps: unknown[]; rerun: unknown } };
    expect([done.fix.steps, done.fix.rerun]).toEqual([report.fix.steps, report.fix.rerun]);
    expect(await treeOf(root)).toEqual(before);
  });
});

describe('attacks with hard links', () => {
  it('attack: an orphan name that is a hard link to the published output, moved into quarantine: the quarantine gets a copy, not a second name of the output', async () => {
    await publish(layout);
    const [pid] = deadPids(1) as [number];
    const orphan = stagingPathFor(layout, pid);
    await age(finalPathFor(layout), Date.now(), 2 * HOUR_MS);
    await fs.link(finalPathFor(layout), orphan);
    const output = await fs.stat(finalPathFor(layout));
    const quarantine = join(root, 'q');
    const result = await fixInProcess(['--json', '--quarantine', quarantine]);
    expect(result.code, outOf(result)).toBe(0);
    const moved = await fs.stat(join(quarantine, `${KEY}.${pid}.csv`));
    expect(moved.ino).not.toBe(output.ino);
    expect(readFileSync(join(quarantine, `${KEY}.${pid}.csv`), 'utf8')).toBe(`published ${KEY}\n`);
    // utimes takes seconds as a double: the copy's mtime is exact to well under a millisecond.
    expect(Math.abs(moved.mtimeMs - output.mtimeMs)).toBeLessThan(1);
    const after = await fs.stat(finalPathFor(layout));
    expect([after.ino, after.nlink, readFileSync(finalPathFor(layout), 'utf8')]).toEqual([output.ino, 1, `published ${KEY}\n`]);
    expect(await exists(orphan)).toBe(false);
  });

  it('held: the same name without --quarantine: only the staging name goes, the output keeps its bytes', async () => {
    await publish(layout);
    const [pid] = deadPids(1) as [number];
    const orphan = stagingPathFor(layout, pid);
    await age(finalPathFor(layout), Date.now(), 2 * HOUR_MS);
    await fs.link(finalPathFor(layout), orphan);
    const outBefore = await treeOf(layout.outDir);
    const result = await fixInProcess(['--json']);
    expect(result.code, outOf(result)).toBe(0);
    expect(await exists(orphan)).toBe(false);
    expect(await treeOf(layout.outDir)).toEqual(outBefore);
  });
});

describe('attacks the mode bits cannot show', () => {
  /** The built bin in a mount namespace of its own, after `setup` (shell) ran there: the mounts vanish with it. */
  function binInMountNamespace(setup: string, args: readonly string[]): Promise<Exited> {
    const script = `${setup} || exit 77\nexec "$NODE" "$BIN" "$@"`;
    const child = spawn(
      'unshare',
      ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...args],
      { cwd: root, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined, NODE: process.execPath, BIN: built.bin }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return collectOutput(child, 40_000);
  }

  it('attack: a --quarantine on a read-only mount: exit 2 before anything moves, as the README promises, the disk unchanged', async (context) => {
    await plantOrphans(layout, 2);
    const quarantine = join(root, 'q');
    await fs.mkdir(quarantine);
    const before = await treeOf(root);
    for (const extra of [['--dry-run'], []]) {
      const result = await binInMountNamespace(
        `mount --bind -o ro "${quarantine}" "${quarantine}"`,
        ['diagnose', KEY, ...layoutFlags(), '--fix', '--quarantine', quarantine, '--rerun', 'job {date}', ...extra],
      );
      if (result.code === 77) context.skip(`no bind mount possible here: ${result.stderr.trim()}`);
      expect(result.code, outOf(result)).toBe(2);
      expectNoStack(result);
      expect(result.stderr).toContain(`--quarantine ${quarantine} cannot be written (EROFS); nothing was moved.`);
    }
    expect(await treeOf(root)).toEqual(before);
  });
});

describe('permissions through groups', () => {
  /** A staging directory of root's group 4242, mode 0770: only its members may remove. */
  async function groupStaging(): Promise<string[]> {
    await openToNobody();
    await fs.chown(layout.stagingDir, 0, 4242);
    await fs.chmod(layout.stagingDir, 0o770);
    await fs.mkdir(join(layout.stagingDir, '.crashdiag'), { mode: 0o770 });
    await fs.chown(join(layout.stagingDir, '.crashdiag'), 0, 4242);
    await fs.chmod(join(layout.stagingDir, '.crashdiag'), 0o770);
    return plantOrphans(layout, 2);
  }

  it('held: a member of the staging directory’s group through a supplementary group removes root’s orphans', async () => {
    const orphans = await groupStaging();
    const result = await binAsNobody(['diagnose', KEY, ...layoutFlags(), '--fix', '--json'], [4242]);
    expect(result.code, outOf(result)).toBe(10);
    for (const path of orphans) expect(await exists(path)).toBe(false);
  });
});

describe('attacks on "root may remove anything"', () => {
  /** A shared sticky staging directory (owned by nobody), one orphan of nobody's and one of uid 4321's. */
  async function stickyStagingOfNobody(): Promise<{ own: string; others: string }> {
    await openToNobody();
    await fs.chown(layout.stagingDir, NOBODY.uid, NOBODY.gid);
    const [own, others] = (await plantOrphans(layout, 2)) as [string, string];
    await ownedByNobody([own]);
    const { atime, mtime } = await fs.stat(others);
    await fs.chown(others, 4321, 4321);
    await fs.utimes(others, atime, mtime);
    return { own, others };
  }

  async function expectRefusedUpFront(result: Exited, refused: readonly string[], before: unknown): Promise<void> {
    expect(result.code, outOf(result)).toBe(30);
    expectNoStack(result);
    const report = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { fix: { refused: Array<{ path: string }>; steps: unknown[] } };
    expect(report.fix.refused.map((r) => r.path)).toEqual(refused);
    expect(report.fix.steps).toEqual([]);
    expect(await treeOf(root)).toEqual(before);
  }

  it('attack: "root" in a user namespace (a rootless container), uid 0 without power over the files: refused up front, nothing removed', async (context) => {
    const { others } = await stickyStagingOfNobody();
    // Its uid 0 is nobody outside: the files of real root and of uid 4321 are beyond its capabilities.
    await fs.chown(layout.stagingDir, 0, 0);
    const before = await treeOf(root);
    const child = spawn(
      'setpriv',
      [`--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups', 'unshare', '--user', '--map-root-user', process.execPath, built.bin, 'diagnose', KEY, ...layoutFlags(), '--fix', '--json'],
      { cwd: root, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const result = await collectOutput(child, 40_000);
    if (result.stderr.includes('unshare:')) context.skip(`no user namespace here: ${result.stderr.trim()}`);
    await expectRefusedUpFront(result, [others], before);
  });

  it('attack: root without CAP_FOWNER (dropped from its bounding set) in another user’s sticky directory: refused up front, nothing removed', async () => {
    const { own, others } = await stickyStagingOfNobody();
    const before = await treeOf(root);
    const child = spawn(
      'setpriv',
      ['--bounding-set', '-fowner,-dac_override', process.execPath, built.bin, 'diagnose', KEY, ...layoutFlags(), '--fix', '--json'],
      { cwd: root, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // Root owns neither the directory nor either file: without CAP_FOWNER the sticky rule holds it off both.
    await expectRefusedUpFront(await collectOutput(child, 40_000), [own, others].sort(), before);
  });
});

describe('attacks on the report of a fix stopped midway', () => {
  it('attack: the staging directory is made unreadable as a removal fails (chmod 000 midway): the report of what was done still comes, exit 30', async () => {
    const [first, second, third] = (await plantOrphans(layout, 3)) as [string, string, string];
    const real = { ...fs, lstatSync };
    let locked = false;
    const denied = (what: string) =>
      Object.assign(new Error(`EACCES: permission denied, ${what}`), { code: 'EACCES' });
    const result = await fixInProcess(['--json', '--rerun', 'job {date}'], {
      fs: {
        ...real,
        unlink: async (path) => {
          if (String(path) === second) {
            locked = true;
            throw denied(`unlink '${String(path)}'`);
          }
          return fs.unlink(path);
        },
        opendir: async (path, options) => {
          if (locked && String(path) === layout.stagingDir) throw denied(`opendir '${String(path)}'`);
          return fs.opendir(path, options);
        },
      },
    });
    expect(result.code, outOf(result)).toBe(30);
    expectNoStack(result);
    type Stopped = { state: string; fix: { steps: Array<{ path: string; result: string }>; stopped: string } };
    const report = JSON.parse(result.stdout) as Stopped;
    expect(report.state).toBe('UNKNOWN');
    expect(report.fix.steps.map((s) => [s.path, s.result])).toEqual([
      [first, 'deleted'],
      [second, 'failed'],
      [third, 'not-attempted'],
    ]);
    expect(auditLines().map((r) => [r.op, r.path])).toEqual([
      ['delete', first],
      ['fail', second],
    ]);
    expect(result.reruns).toEqual([]);
  });

  it('attack: the staging directory is made unreadable once every orphan is gone: the report still comes, exit 30, nothing re-run', async () => {
    const orphans = await plantOrphans(layout, 2);
    const real = { ...fs, lstatSync };
    let locked = false;
    const result = await fixInProcess(['--json', '--rerun', 'job {date}'], {
      fs: {
        ...real,
        unlink: async (path) => {
          await fs.unlink(path);
          if (String(path) === orphans[1]) locked = true;
        },
        opendir: async (path, options) => {
          if (locked && String(path) === layout.stagingDir) {
            throw Object.assign(new Error(`EACCES: permission denied, opendir '${String(path)}'`), { code: 'EACCES' });
          }
          return fs.opendir(path, options);
        },
      },
    });
    expect(result.code, outOf(result)).toBe(30);
    expectNoStack(result);
    type Done = { state: string; fix: { steps: Array<{ result: string }>; rerunSkipped: string } };
    const report = JSON.parse(result.stdout) as Done;
    expect(report.state).toBe('UNKNOWN');
    expect(report.fix.steps.map((s) => s.result)).toEqual(['deleted', 'deleted']);
    expect(report.fix.rerunSkipped).toMatch(/^the run is UNKNOWN now/);
    expect(result.reruns).toEqual([]);
  });
});
