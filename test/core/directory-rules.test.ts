// "Are these one directory", "is this name published here", "which liveness
// rules apply": asked of real directories, where symlinks and inodes are real.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { directoryOverlaps, rulesForStagingDirectory } from '../../src/core/directory-rules.js';
import { type GuardContext, guardRemoval, readBoundaries } from '../../src/core/guards.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { directoryIdentity, isWithinDirectory, sameDirectory } from '../../src/core/same-directory.js';
import type { Neighbour, PipelineSettings } from '../../src/core/settings.js';
import { compileFinalTemplate, compileMarkerTemplate, compileStagingTemplate } from '../../src/core/template.js';
import { deadPid } from '../support/dead-pids.js';
import { KEY, settingsFor, writeAged } from '../support/pipeline-files.js';
import { type Layout, useTempLayout } from '../support/temp-layout.js';
import { ownIdentity } from '../support/identity.js';

let layout: Layout;
useTempLayout('crashdiag-dirs-', (made) => {
  layout = made;
});

function neighbour(overrides: Partial<Neighbour>): Neighbour {
  return {
    pipeline: 'other',
    outDir: undefined,
    stagingDir: undefined,
    final: undefined,
    staging: compileStagingTemplate('{date}.{pid}.csv'),
    marker: compileMarkerTemplate('{final}.success'),
    staleAfterMs: 15 * 60_000,
    pidCheck: true,
    ...overrides,
  };
}

describe('sameDirectory', () => {
  it('sees one directory through a symlink, and two directories as two', async () => {
    const link = join(layout.root, 'link');
    await fs.symlink(layout.outDir, link);
    expect(await sameDirectory(fs, layout.outDir, link)).toBe(true);
    expect(await sameDirectory(fs, layout.outDir, `${layout.outDir}/.`)).toBe(true);
    expect(await sameDirectory(fs, layout.outDir, layout.stagingDir)).toBe(false);
    expect(await directoryIdentity(fs, join(layout.root, 'missing'))).toBeUndefined();
  });

  it('finds a directory beneath another through a symlink', async () => {
    const link = join(layout.root, 'link');
    await fs.symlink(layout.outDir, link);
    const out = await directoryIdentity(fs, layout.outDir);
    expect(await isWithinDirectory(fs, join(link, 'q', 'deeper'), out)).toBe(true);
    expect(await isWithinDirectory(fs, join(layout.stagingDir, 'q'), out)).toBe(false);
  });
});

describe('rulesForStagingDirectory', () => {
  it('names the run and pipeline of another pipeline\'s published output in this staging directory', async () => {
    const link = join(layout.root, 'staging-link');
    await fs.symlink(layout.stagingDir, link);
    const settings = settingsFor(layout, {
      neighbours: [neighbour({ pipeline: 'b', outDir: link, final: compileFinalTemplate('report.{date}.csv') })],
    });
    const here = await rulesForStagingDirectory(fs, settings);
    expect(here.sharedWithOwnOutput).toBe(false);
    expect(here.publishedAs('report.20260424.csv')).toEqual({ runKey: '20260424', pipeline: 'b' });
    expect(here.publishedAs('report.20260424.csv.success')).toEqual({ runKey: '20260424', pipeline: 'b' });
    expect(here.publishedAs(`${KEY}.123.csv`)).toBeUndefined();
  });

  it('judges a name another pipeline stages here by the most cautious rules of both', async () => {
    const settings = settingsFor(layout, {
      neighbours: [
        neighbour({ pipeline: 'payouts', stagingDir: layout.stagingDir, pidCheck: false, staleAfterMs: 86_400_000 }),
        neighbour({ pipeline: 'elsewhere', stagingDir: layout.outDir, staleAfterMs: 7 * 86_400_000 }),
        neighbour({
          pipeline: 'other-names',
          stagingDir: layout.stagingDir,
          staging: compileStagingTemplate('tmp-{date}-{pid}'),
          staleAfterMs: 9 * 86_400_000,
        }),
      ],
    });
    const here = await rulesForStagingDirectory(fs, settings);
    expect(here.writerRulesFor(`${KEY}.123.csv`)).toEqual({
      pidCheck: false,
      staleAfterMs: 86_400_000,
      pidCheckOffBy: 'payouts',
    });
    expect(here.writerRulesFor('notes.txt')).toEqual({ pidCheck: true, staleAfterMs: 15 * 60_000 });
  });

  it('turns PID checks off where another pipeline reads the name as another writer (a host, another PID)', async () => {
    const settings = settingsFor(layout, {
      neighbours: [
        neighbour({ pipeline: 'hosts', stagingDir: layout.stagingDir, staging: compileStagingTemplate('{date}.{host}.{pid}.csv') }),
        neighbour({ pipeline: 'same', stagingDir: layout.stagingDir }),
      ],
    });
    const here = await rulesForStagingDirectory(fs, settings);
    expect(here.writerRulesFor(`${KEY}.otherhost.123.csv`)).toMatchObject({
      pidCheck: false,
      pidCheckOffBy: 'hosts',
      pidCheckOffWhy: expect.stringMatching(/reads it as PID 123 on host otherhost/),
    });
    // The same reading of the name: the same writer, checked by PID as before.
    expect(here.writerRulesFor(`${KEY}.123.csv`)).toEqual({ pidCheck: true, staleAfterMs: 15 * 60_000 });
  });
});

describe('the guards ask every pipeline of the config', () => {
  const contextFor = (settings: PipelineSettings): GuardContext => ({
    fs,
    processes: createProcessTable(),
    nowMs: Date.now(),
    settings,
    runKey: KEY,
    identity: ownIdentity(),
  });

  it('refuses a dead-PID file that a neighbour without PID checks may still be writing', async () => {
    const path = join(layout.stagingDir, `${KEY}.${deadPid()}.csv`);
    await writeAged(path, 'payouts, in flight', 60_000);
    const alone = contextFor(settingsFor(layout));
    expect((await guardRemoval(alone, await readBoundaries(alone), { path })).ok).toBe(true);
    const shared = contextFor(
      settingsFor(layout, {
        neighbours: [neighbour({ pipeline: 'payouts', stagingDir: layout.stagingDir, pidCheck: false })],
      }),
    );
    expect(await guardRemoval(shared, await readBoundaries(shared), { path })).toEqual({
      ok: false,
      reason: expect.stringMatching(/^its writer is alive: pipeline payouts stages files of this name/),
    });
  });

  it('refuses another pipeline\'s published output in this staging directory', async () => {
    const path = join(layout.stagingDir, 'report.2026.csv');
    await writeAged(path, 'published by b', 3 * 86_400_000);
    const ctx = {
      ...contextFor(
        settingsFor(layout, {
          neighbours: [
            neighbour({ pipeline: 'b', outDir: layout.stagingDir, final: compileFinalTemplate('report.{date}.csv') }),
          ],
        }),
      ),
      runKey: 'report',
    };
    const verdict = await guardRemoval(ctx, await readBoundaries(ctx), { path });
    expect(verdict).toEqual({ ok: false, reason: 'it is the published output or its marker of pipeline b' });
  });
});

describe('directoryOverlaps', () => {
  it('pairs pipelines that share a directory under any name, and nothing else', async () => {
    const link = join(layout.root, 'link');
    await fs.symlink(layout.stagingDir, link);
    const overlaps = await directoryOverlaps(fs, [
      { pipeline: 'a', outDir: layout.outDir, stagingDir: layout.stagingDir },
      { pipeline: 'b', outDir: link, stagingDir: join(layout.root, 'b-stg') },
      { pipeline: 'c', outDir: undefined, stagingDir: join(layout.root, 'b-stg') },
    ]);
    expect(overlaps).toEqual([
      {
        first: { pipeline: 'a', role: 'stagingDir', dir: layout.stagingDir },
        second: { pipeline: 'b', role: 'outDir', dir: link },
      },
      {
        first: { pipeline: 'b', role: 'stagingDir', dir: join(layout.root, 'b-stg') },
        second: { pipeline: 'c', role: 'stagingDir', dir: join(layout.root, 'b-stg') },
      },
    ]);
  });
});
