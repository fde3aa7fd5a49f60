// Real directories and real processes for the --fix tests: every deletion
// test runs against the kernel, not a fake, because symlinks, inodes and PID
// liveness are exactly what the guards are about.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { PipelineSettings } from '../../src/core/settings.js';
import type { Layout } from '../support/temp-layout.js';
import {
  compileFinalTemplate,
  compileMarkerTemplate,
  compileStagingTemplate,
} from '../../src/core/template.js';

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
