import { promises as nodeFs } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolveSettings } from '../src/cli/pipeline-options.js';
import { cleanPipeline } from '../src/core/clean.js';
import type { FileSystem } from '../src/core/fs.js';
import { probeRun } from '../src/core/probe.js';
import { createProcessTable } from '../src/core/process-table.js';
import { scanPipeline } from '../src/core/scan.js';
import { FINAL_TEMPLATE } from './fixtures.js';
import { realLockRuntime } from '../test/support/lock-runtime.js';

/** What the core asked of the file system during one call. */
export interface FsCounts {
  /** Calls per method name. */
  readonly calls: Map<string, number>;
  /** lstat and stat calls per path. */
  readonly statsByPath: Map<string, number>;
  /** Listings opened per directory. */
  readonly listingsByDir: Map<string, number>;
  /** The most file-system calls awaiting their result at one moment. */
  peakInFlight: number;
}

/**
 * Wraps node:fs/promises and counts, for every call the core makes through
 * its FileSystem: which method, on which path, and how many were in flight
 * at once. Handles it returns (Dir, FileHandle) are not wrapped: reads from
 * an open listing are the listing, counted once when it is opened.
 */
export function countingFileSystem(base: FileSystem = nodeFs): { fs: FileSystem; counts: FsCounts } {
  const counts: FsCounts = {
    calls: new Map(),
    statsByPath: new Map(),
    listingsByDir: new Map(),
    peakInFlight: 0,
  };
  let inFlight = 0;
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  const fs = new Proxy(base, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return async (...args: unknown[]) => {
        bump(counts.calls, property);
        const path = String(args[0]);
        if (property === 'lstat' || property === 'stat') bump(counts.statsByPath, path);
        if (property === 'opendir') bump(counts.listingsByDir, path);
        inFlight++;
        counts.peakInFlight = Math.max(counts.peakInFlight, inFlight);
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } finally {
          inFlight--;
        }
      };
    },
  });
  return { fs, counts };
}

function settingsFor(outDir: string, stagingDir: string) {
  return resolveSettings({ outDir, stagingDir, final: FINAL_TEMPLATE }, undefined, {}, stagingDir);
}

export interface ListingReport {
  readonly stagingListings: number;
  readonly outListings: number;
  readonly stats: number;
  readonly peakInFlight: number;
  readonly ms: number;
}

function listingReport(counts: FsCounts, outDir: string, stagingDir: string, ms: number): ListingReport {
  return {
    stagingListings: counts.listingsByDir.get(stagingDir) ?? 0,
    outListings: counts.listingsByDir.get(outDir) ?? 0,
    stats: (counts.calls.get('lstat') ?? 0) + (counts.calls.get('stat') ?? 0),
    peakInFlight: counts.peakInFlight,
    ms,
  };
}

/** diagnose's probe for one key: how often it lists each directory and how many stats it makes. */
export async function countDiagnose(outDir: string, stagingDir: string, key: string): Promise<ListingReport> {
  const { fs, counts } = countingFileSystem();
  const started = performance.now();
  await probeRun(
    { fs, processes: createProcessTable(), nowMs: Date.now() },
    settingsFor(outDir, stagingDir),
    key,
  );
  return listingReport(counts, outDir, stagingDir, performance.now() - started);
}

/** scan: every key from one listing of each directory. */
export async function countScan(
  outDir: string,
  stagingDir: string,
): Promise<ListingReport & { runs: number }> {
  const { fs, counts } = countingFileSystem();
  const started = performance.now();
  const result = await scanPipeline(
    { fs, processes: createProcessTable(), nowMs: Date.now(), wallClock: Date.now },
    settingsFor(outDir, stagingDir),
    { sinceMs: 7 * 86_400_000, daily: false },
  );
  return {
    ...listingReport(counts, outDir, stagingDir, performance.now() - started),
    runs: result.runs.length,
  };
}

export interface CleanCounts {
  readonly candidates: number;
  readonly removed: number;
  /** Highest number of lstat/stat calls on any one candidate file. */
  readonly maxStatsPerCandidate: number;
  readonly statsOnCandidates: number;
  readonly stagingListings: number;
  readonly peakInFlight: number;
  readonly ms: number;
}

/** The janitor over a directory of orphans, for real (it deletes them), counting every look. */
export async function countClean(
  outDir: string,
  stagingDir: string,
  auditLog: string,
  isCandidate: (name: string) => boolean,
): Promise<CleanCounts> {
  const { fs, counts } = countingFileSystem();
  const candidates = (await nodeFs.readdir(stagingDir)).filter(isCandidate);
  const started = performance.now();
  const report = await cleanPipeline(
    {
      fs,
      processes: createProcessTable(),
      wallClock: Date.now,
      sleep: (ms) => sleep(ms),
      user: 'bench',
      ...realLockRuntime(),
    },
    settingsFor(outDir, stagingDir),
    // 1 ms, not 24 h: the orphans were linked just now, and the janitor ages a file by its ctime.
    { olderThanMs: 1, dryRun: false, auditLog, lockTimeoutMs: 30_000 },
  );
  const ms = performance.now() - started;
  let maxStats = 0;
  let statsOnCandidates = 0;
  for (const name of candidates) {
    const n = counts.statsByPath.get(join(stagingDir, name)) ?? 0;
    maxStats = Math.max(maxStats, n);
    statsOnCandidates += n;
  }
  return {
    candidates: candidates.length,
    removed: report.files,
    maxStatsPerCandidate: maxStats,
    statsOnCandidates,
    stagingListings: counts.listingsByDir.get(stagingDir) ?? 0,
    peakInFlight: counts.peakInFlight,
    ms,
  };
}
