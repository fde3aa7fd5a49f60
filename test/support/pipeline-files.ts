// A pipeline's files on real directories, for the --fix, guard, lock and audit
// tests: every deletion test runs against the kernel, not a fake, because
// symlinks, inodes and PID liveness are exactly what the guards are about.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { PipelineSettings } from '../../src/core/settings.js';
import {
  compileFinalTemplate,
  compileMarkerTemplate,
  compileStagingTemplate,
} from '../../src/core/template.js';
import { deadPids } from './dead-pids.js';
import type { Layout } from './temp-layout.js';

export const KEY = '2026-04-24';
export const FINAL_TEMPLATE = 'report_{date}.csv';
export const HOUR_MS = 3_600_000;

export function settingsFor(layout: Layout, overrides: Partial<PipelineSettings> = {}): PipelineSettings {
  return {
    pipeline: undefined,
    outDir: layout.outDir,
    stagingDir: layout.stagingDir,
    final: compileFinalTemplate(FINAL_TEMPLATE),
    staging: compileStagingTemplate('{date}.{pid}.csv'),
    marker: compileMarkerTemplate('{final}.success'),
    freshWithinMs: 6 * HOUR_MS,
    staleAfterMs: 15 * 60_000,
    pidCheck: true,
    rerun: undefined,
    ...overrides,
  };
}

export function finalPathFor(layout: Layout, key = KEY): string {
  return join(layout.outDir, `report_${key}.csv`);
}

export function markerPathFor(layout: Layout, key = KEY): string {
  return `${finalPathFor(layout, key)}.success`;
}

export function stagingPathFor(layout: Layout, pid: number, key = KEY): string {
  return join(layout.stagingDir, `${key}.${pid}.csv`);
}

/**
 * Writes a file and backdates it: an orphan untouched for a while. Even if its
 * PID were reused, a process started after the last write cannot be its writer.
 */
export async function writeAged(path: string, content: string, ageMs = HOUR_MS): Promise<void> {
  await fs.writeFile(path, content);
  const t = new Date(Date.now() - ageMs);
  await fs.utimes(path, t, t);
}

/** The published output and its marker for a run key. */
export async function publish(layout: Layout, key = KEY, content = `published ${key}\n`): Promise<void> {
  await fs.writeFile(finalPathFor(layout, key), content);
  await fs.writeFile(markerPathFor(layout, key), '');
}

/** Orphans of `key` with dead writers, backdated, sorted by path like the diagnosis sorts them. */
export async function plantOrphans(layout: Layout, count: number, key = KEY): Promise<string[]> {
  const paths = deadPids(count)
    .map((pid) => stagingPathFor(layout, pid, key))
    .sort();
  for (const [i, path] of paths.entries()) await writeAged(path, `partial ${i}\n`);
  return paths;
}

export interface BystanderOptions {
  /** Also a name with a character before the key: `x<KEY>.<pid>.csv`. */
  readonly prefixLookAlike?: boolean;
}

/** Files no fix of KEY may touch: another key's orphan and output, and names that only look like KEY's. */
export async function plantBystanders(layout: Layout, options: BystanderOptions = {}): Promise<void> {
  const [a, b] = deadPids(2) as [number, number];
  await writeAged(join(layout.stagingDir, `2026-04-23.${a}.csv`), 'other key');
  await writeAged(join(layout.stagingDir, `${KEY}0.${b}.csv`), 'look-alike key');
  await writeAged(join(layout.stagingDir, `${KEY}.${b}.csv.bak`), 'look-alike suffix');
  await writeAged(join(layout.stagingDir, `${KEY}.x${b}.csv`), 'look-alike pid');
  if (options.prefixLookAlike) await writeAged(join(layout.stagingDir, `x${KEY}.${b}.csv`), 'look-alike prefix');
  await publish(layout, '2026-04-23');
}
