// The guards every removal must pass, on real files: a realpath'd staging
// directory, lstat, inodes, and the real process table for writer liveness.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type Boundaries,
  type GuardContext,
  guardRemoval,
  isInside,
  readBoundaries,
  recheckRemoval,
} from '../../src/core/guards.js';
import { createProcessTable } from '../../src/core/process-table.js';
import type { PipelineSettings } from '../../src/core/settings.js';
import { compileFinalTemplate } from '../../src/core/template.js';
import { changedAtMtimeFs } from '../support/ctime.js';
import { deadPid } from '../support/dead-pids.js';
import { NOBODY, ownIdentity } from '../support/identity.js';
import { exists } from '../support/disk.js';
import { startLiveProcess } from '../support/live-process.js';
import { KEY, settingsFor, stagingPathFor, writeAged } from '../support/pipeline-files.js';
import { type Layout, useTempLayout } from '../support/temp-layout.js';

const processes = createProcessTable();
let root: string;
let layout: Layout;

useTempLayout('crashdiag-fix-', (made) => {
  layout = made;
  root = made.root;
});

function contextFor(settings: PipelineSettings = settingsFor(layout)): GuardContext {
  // Orphans are aged with utimes; this disk reports them as last changed then.
  return {
    fs: changedAtMtimeFs(fs),
    processes,
    nowMs: Date.now(),
    settings,
    runKey: KEY,
    identity: ownIdentity(),
  };
}

async function boundsFor(ctx: GuardContext): Promise<Boundaries> {
  return readBoundaries(ctx);
}

describe('isInside', () => {
  it.each([
    ['/a/b/c', '/a/b', true],
    ['/a/b', '/a/b', true],
    ['/a/bc', '/a/b', false],
    ['/a', '/a/b', false],
    ['/a/b/../c', '/a/b', false],
    ['/x/y', '/a/b', false],
  ])('%s inside %s: %s', (child, parent, inside) => {
    expect(isInside(child, parent)).toBe(inside);
  });
});

describe('guardRemoval', () => {
  it('passes a dead writer’s regular file inside staging, and snapshots its identity', async () => {
    const pid = deadPid();
    const path = stagingPathFor(layout, pid);
    await writeAged(path, 'partial');
    const ctx = contextFor();
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path });
    expect(verdict.ok).toBe(true);
    const stats = await ctx.fs.lstat(path);
    if (verdict.ok) {
      expect(verdict.snapshot).toEqual({
        dev: stats.dev,
        ino: stats.ino,
        bytes: 7,
        mtimeMs: stats.mtimeMs,
        ctimeMs: stats.ctimeMs,
      });
    }
  });

  it('attack: refuses a live writer’s file whose mtime was set a day back (cp -p, curl -R)', async () => {
    const live = await startLiveProcess();
    try {
      const path = stagingPathFor(layout, live.pid);
      // Written after the writer started, then its mtime set a day back, on the raw disk.
      await writeAged(path, 'in flight', 24 * 3_600_000);
      const ctx = { ...contextFor(), fs };
      const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path });
      expect(verdict.ok).toBe(false);
      if (!verdict.ok) expect(verdict.reason).toMatch(/its writer is alive: .*started .* before the file's last change/);
      expect(await exists(path)).toBe(true);
    } finally {
      await live.stop();
    }
  });

  it('attack: the last look sees a rewrite that put the old size and mtime back (the ctime moved)', async () => {
    const path = stagingPathFor(layout, deadPid());
    await writeAged(path, 'partial');
    const ctx = { ...contextFor(), fs };
    const bounds = await boundsFor(ctx);
    const verdict = await guardRemoval(ctx, bounds, { path });
    if (!verdict.ok) throw new Error(verdict.reason);
    // Let the clock move past the snapshot's ctime, then rewrite in place and restore the mtime.
    while (Date.now() < verdict.snapshot.ctimeMs + 20) await new Promise((resolve) => setImmediate(resolve));
    const { mtime } = await fs.lstat(path);
    await fs.writeFile(path, 'PARTIAL');
    await fs.utimes(path, mtime, mtime);
    const again = await recheckRemoval(ctx, bounds, { path }, verdict.snapshot);
    expect(again.ok).toBe(false);
    if (again.ok === false) expect(again.reason).toMatch(/changed since it was checked/);
    expect(await fs.readFile(path, 'utf8')).toBe('PARTIAL');
  });

  it('refuses a path outside the staging directory, even one named like an orphan', async () => {
    const elsewhere = join(root, 'elsewhere');
    await fs.mkdir(elsewhere);
    const path = join(elsewhere, `${KEY}.${deadPid()}.csv`);
    await writeAged(path, 'not ours');
    const ctx = contextFor();
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path });
    expect(verdict).toEqual({ ok: false, reason: expect.stringContaining('not directly inside') });
    expect(await exists(path)).toBe(true);
  });

  it('refuses a path that climbs out of staging with ..', async () => {
    const path = join(layout.stagingDir, '..', 'out', `${KEY}.${deadPid()}.csv`);
    await writeAged(join(layout.outDir, `${KEY}.${deadPid()}.csv`), 'published-looking');
    const ctx = contextFor();
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path });
    expect(verdict.ok).toBe(false);
  });

  it('refuses a file in a subdirectory of staging', async () => {
    const sub = join(layout.stagingDir, 'sub');
    await fs.mkdir(sub);
    const path = join(sub, `${KEY}.${deadPid()}.csv`);
    await writeAged(path, 'x');
    const ctx = contextFor();
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path });
    expect(verdict).toEqual({ ok: false, reason: expect.stringContaining('not directly inside') });
  });

  it('refuses a file reached through a symlinked directory that resolves outside staging', async () => {
    const outside = join(root, 'outside');
    await fs.mkdir(outside);
    const pid = deadPid();
    await writeAged(join(outside, `${KEY}.${pid}.csv`), 'outside');
    await fs.symlink(outside, join(layout.stagingDir, 'door'));
    const path = join(layout.stagingDir, 'door', `${KEY}.${pid}.csv`);
    const ctx = contextFor();
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path });
    expect(verdict.ok).toBe(false);
    expect(await exists(join(outside, `${KEY}.${pid}.csv`))).toBe(true);
  });

  it('accepts a staging directory reached through a symlink: the files are still inside it', async () => {
    const link = join(root, 'staging-link');
    await fs.symlink(layout.stagingDir, link);
    const pid = deadPid();
    await writeAged(stagingPathFor(layout, pid), 'partial');
    const ctx = contextFor(settingsFor({ ...layout, stagingDir: link }));
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path: join(link, `${KEY}.${pid}.csv`) });
    expect(verdict.ok).toBe(true);
  });

  it('refuses a relative path', async () => {
    const ctx = contextFor();
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path: `${KEY}.${deadPid()}.csv` });
    expect(verdict).toEqual({ ok: false, reason: 'not an absolute path' });
  });

  it.each([
    ['another run key', (pid: number) => `2026-04-23.${pid}.csv`],
    ['a key that only starts like it', (pid: number) => `${KEY}0.${pid}.csv`],
    ['a non-numeric PID', () => `${KEY}.abc.csv`],
    ['an extra suffix', (pid: number) => `${KEY}.${pid}.csv.bak`],
    ['a prefix', (pid: number) => `x${KEY}.${pid}.csv`],
  ])('refuses a name that does not match the staging template: %s', async (_, nameOf) => {
    const path = join(layout.stagingDir, nameOf(deadPid()));
    await writeAged(path, 'look-alike');
    const ctx = contextFor();
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path });
    expect(verdict).toEqual({ ok: false, reason: expect.stringContaining('does not match') });
    expect(await exists(path)).toBe(true);
  });

  it('refuses a symlink named like an orphan and never follows it', async () => {
    const target = join(root, 'precious.csv');
    await fs.writeFile(target, 'precious');
    const path = stagingPathFor(layout, deadPid());
    await fs.symlink(target, path);
    const ctx = contextFor();
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path });
    expect(verdict).toEqual({ ok: false, reason: 'it is a symlink, not a regular file' });
    expect(await exists(path)).toBe(true);
    expect(await fs.readFile(target, 'utf8')).toBe('precious');
  });

  it('refuses a directory named like an orphan', async () => {
    const path = stagingPathFor(layout, deadPid());
    await fs.mkdir(path);
    const ctx = contextFor();
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path });
    expect(verdict).toEqual({ ok: false, reason: 'it is a directory, not a regular file' });
  });

  it('refuses a file whose writer is alive', async () => {
    const live = await startLiveProcess();
    try {
      const path = stagingPathFor(layout, live.pid);
      await fs.writeFile(path, 'being written');
      const ctx = contextFor();
      const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path });
      expect(verdict).toEqual({ ok: false, reason: expect.stringContaining('its writer is alive') });
    } finally {
      await live.stop();
    }
  });

  it('refuses a fresh file whose writer cannot be judged by PID (judged by age: it may be alive)', async () => {
    const path = stagingPathFor(layout, deadPid());
    await fs.writeFile(path, 'fresh');
    const ctx = contextFor(settingsFor(layout, { pidCheck: false }));
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path });
    expect(verdict).toEqual({ ok: false, reason: expect.stringContaining('its writer is alive') });
  });

  it('refuses a missing file', async () => {
    const ctx = contextFor();
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), {
      path: stagingPathFor(layout, deadPid()),
    });
    expect(verdict).toEqual({ ok: false, reason: expect.stringContaining('ENOENT') });
  });

  it('refuses the published output when staging and output are one directory', async () => {
    // An output name the staging template also matches (PID 1): only the published-name guard stops it.
    const shared = { ...layout, outDir: layout.stagingDir };
    const settings = settingsFor(shared, { final: compileFinalTemplate('{date}.1.csv') });
    const path = join(layout.stagingDir, `${KEY}.1.csv`);
    await writeAged(path, 'published');
    const ctx = contextFor(settings);
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path });
    expect(verdict).toEqual({ ok: false, reason: 'it is the published output or its marker' });
  });
});

describe('recheckRemoval', () => {
  async function checked(content = 'partial') {
    const pid = deadPid();
    const path = stagingPathFor(layout, pid);
    await writeAged(path, content);
    const ctx = contextFor();
    const bounds = await boundsFor(ctx);
    const verdict = await guardRemoval(ctx, bounds, { path });
    if (!verdict.ok) throw new Error(`the guard refused a plain orphan: ${verdict.reason}`);
    return { path, ctx, bounds, snapshot: verdict.snapshot };
  }

  it('passes the very file that was checked', async () => {
    const { path, ctx, bounds, snapshot } = await checked();
    expect((await recheckRemoval(ctx, bounds, { path }, snapshot)).ok).toBe(true);
  });

  it('reports a file already gone as gone', async () => {
    const { path, ctx, bounds, snapshot } = await checked();
    await fs.unlink(path);
    expect(await recheckRemoval(ctx, bounds, { path }, snapshot)).toEqual({ ok: 'gone' });
  });

  it('refuses a file replaced since the check (another inode under the same name)', async () => {
    const { path, ctx, bounds, snapshot } = await checked();
    const replacement = `${path}.new`;
    await writeAged(replacement, 'partial');
    // Same name, same size, same mtime: only the inode tells.
    const t = new Date(snapshot.mtimeMs);
    await fs.utimes(replacement, t, t);
    await fs.rename(replacement, path);
    const verdict = await recheckRemoval(ctx, bounds, { path }, snapshot);
    expect(verdict).toEqual({ ok: false, reason: 'it was replaced since it was checked' });
    expect(await exists(path)).toBe(true);
  });

  it('refuses a file that grew since the check', async () => {
    const { path, ctx, bounds, snapshot } = await checked();
    await fs.appendFile(path, ' more rows');
    const t = new Date(snapshot.mtimeMs);
    await fs.utimes(path, t, t);
    const verdict = await recheckRemoval(ctx, bounds, { path }, snapshot);
    expect(verdict).toEqual({ ok: false, reason: expect.stringContaining('changed since it was checked') });
  });

  it('refuses a file whose mtime moved since the check, same size', async () => {
    const { path, ctx, bounds, snapshot } = await checked();
    const t = new Date(snapshot.mtimeMs - 60_000);
    await fs.utimes(path, t, t);
    const verdict = await recheckRemoval(ctx, bounds, { path }, snapshot);
    expect(verdict).toEqual({ ok: false, reason: expect.stringContaining('changed since it was checked') });
  });

  it('refuses a file swapped for a symlink since the check', async () => {
    const { path, ctx, bounds, snapshot } = await checked();
    const target = join(root, 'precious.csv');
    await fs.writeFile(target, 'precious');
    await fs.unlink(path);
    await fs.symlink(target, path);
    const verdict = await recheckRemoval(ctx, bounds, { path }, snapshot);
    expect(verdict).toEqual({ ok: false, reason: 'it is a symlink, not a regular file' });
    expect(await fs.readFile(target, 'utf8')).toBe('precious');
  });
});

describe('guardRemoval: permission to remove, for the acting user', () => {
  it.each([
    ['nobody, a sticky 1777 staging directory, root’s file', 0o1777, 0, /^permission denied: its directory is sticky \(mode 1777\)/],
    ['nobody, a sticky 1777 staging directory, its own file', 0o1777, 65534, null],
    ['nobody, root’s 0755 staging directory, its own file', 0o755, 65534, /^permission denied: uid 65534 may not remove entries from its directory \(mode 0755/],
  ] as const)('%s', async (_, dirMode, fileOwner, denied) => {
    await fs.chmod(layout.stagingDir, dirMode);
    const path = stagingPathFor(layout, deadPid());
    await writeAged(path, 'partial');
    await fs.lchown(path, fileOwner, fileOwner);
    const ctx = { ...contextFor(), identity: NOBODY };
    const verdict = await guardRemoval(ctx, await boundsFor(ctx), { path });
    if (denied === null) expect(verdict.ok).toBe(true);
    else expect(verdict).toEqual({ ok: false, reason: expect.stringMatching(denied) });
    expect(await exists(path)).toBe(true);
  });

  it('lets root remove another user’s file from a sticky directory', async () => {
    await fs.chmod(layout.stagingDir, 0o1777);
    const path = stagingPathFor(layout, deadPid());
    await writeAged(path, 'partial');
    await fs.lchown(path, 65534, 65534);
    const ctx = { ...contextFor(), identity: { uid: 0, gid: 0, groups: [] } };
    expect((await guardRemoval(ctx, await boundsFor(ctx), { path })).ok).toBe(true);
  });
});
