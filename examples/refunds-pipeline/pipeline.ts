import { open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatSettlements, parseRefunds } from './csv.js';
import type { Journal, Step } from './journal.js';
import { finalName, markerName, stagingName } from './names.js';
import type { ObjectWriter } from './s3-objects.js';
import { loadToS3 } from './s3-load.js';
import { settleRefunds } from './transform.js';

/** Where a run can be told to SIGKILL itself, for exact crash tests. */
export const CRASH_POINTS = ['before-staging', 'mid-write', 'after-rename', 'after-marker'] as const;
/**
 * The same in S3 mode. There is no mid-write there: a PutObject's object
 * appears whole or not at all, so the orphan a kill leaves is a complete one.
 */
export const S3_CRASH_POINTS = ['before-staging', 'after-staging', 'after-copy', 'after-delete', 'after-marker'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number] | (typeof S3_CRASH_POINTS)[number];

export interface PipelineOptions {
  runDate: string;
  inputPath: string;
  outDir: string;
  stagingDir: string;
  pid: number;
  /** S3 mode: the writer's host name, which goes into the staging key beside the PID. */
  host?: string;
  /**
   * S3 mode (out-dir and staging-dir are s3:// URLs): the client for the
   * bucket, set up before the first step, as a job sets up its clients at
   * start-up (loading the SDK takes a few hundred ms; no request is sent).
   */
  openObjects?: (() => Promise<ObjectWriter>) | undefined;
  journal: Journal;
  /** Stop dead (SIGKILL, no cleanup) when this point is reached. */
  crashAt?: CrashPoint | undefined;
  /** Kills this process without any cleanup; never returns. */
  crash: () => never;
  /**
   * Pause after each journaled step (half of it between staging write
   * chunks). Zero in production; the crash campaign paces runs so that kills
   * at uniformly random moments land in every step, and the demo so that it
   * can catch a live writer.
   */
  stepDelayMs?: number;
  /**
   * Allocate and touch this many MiB after the first chunk is written: a job
   * that needs more memory than it is given, for real OOM-kill tests (the
   * kernel's SIGKILL lands mid-write and leaves a truncated orphan).
   */
  hogMb?: number;
}

export interface PipelineResult {
  finalPath: string;
  markerPath: string;
  settlements: number;
  bytes: number;
}

/** Writes are split so that a kill mid-write leaves a truncated staging file, as a real one would. */
const WRITE_CHUNKS = 4;

const pause = (ms: number) => (ms > 0 ? sleep(ms) : Promise.resolve());

/** Held until the run ends, so the memory stays charged to the process. */
const hoard: Buffer[] = [];

/** Allocates and touches `mb` MiB, a few MiB at a time, as a job building a big table would. */
function hogMemory(mb: number): Buffer[] {
  const blocks: Buffer[] = [];
  for (let done = 0; done < mb; done += 8) blocks.push(Buffer.allocUnsafe(8 * 1024 * 1024).fill(0x5a));
  return blocks;
}

export async function runPipeline(options: PipelineOptions): Promise<PipelineResult> {
  const objects = await options.openObjects?.();
  try {
    return await extractTransformLoad(options, objects);
  } finally {
    objects?.close();
  }
}

async function extractTransformLoad(
  options: PipelineOptions,
  objects: ObjectWriter | undefined,
): Promise<PipelineResult> {
  const { runDate, outDir, stagingDir, pid, journal, crashAt, crash } = options;
  const delayMs = options.stepDelayMs ?? 0;
  const step = async (name: Step, details?: Record<string, unknown>) => {
    await journal.record(name, details);
    await pause(delayMs);
  };

  await step('start', { runDate });

  const refunds = parseRefunds(await readFile(options.inputPath, 'utf8'));
  await step('extracted', { rows: refunds.length });

  const settlements = settleRefunds(refunds, runDate);
  const output = Buffer.from(formatSettlements(settlements), 'utf8');
  await step('transformed', { settlements: settlements.length, bytes: output.length });

  if (crashAt === 'before-staging') crash();
  if (objects) {
    const load = { ...options, objects, host: options.host ?? '', step, pause: () => pause(delayMs) };
    const published = await loadToS3(load, output);
    return { ...published, settlements: settlements.length, bytes: output.length };
  }
  const stagingPath = join(stagingDir, stagingName(runDate, pid));
  // 'wx': a PID-named file that already exists is another writer's, never ours to reuse.
  const file = await open(stagingPath, 'wx');
  try {
    await step('staging-created', { path: stagingPath });
    const chunks = splitAtLines(output, WRITE_CHUNKS);
    for (const [index, chunk] of chunks.entries()) {
      if (index > 0) await pause(delayMs / 2);
      await file.write(chunk);
      if (crashAt === 'mid-write') crash();
      if (index === 0 && options.hogMb) hoard.push(...hogMemory(options.hogMb));
    }
    await file.sync();
  } catch (error) {
    // A failure we can see (disk full, I/O error) cleans up after itself;
    // only a kill leaves an orphan behind.
    await file.close().catch(() => {});
    await unlink(stagingPath).catch(() => {});
    throw error;
  }
  await file.close();
  await step('staged', { bytes: output.length });

  const finalPath = join(outDir, finalName(runDate));
  await rename(stagingPath, finalPath);
  // The rename must be durable before the marker is: after a power loss a
  // marker whose output vanished would be worse than no marker at all.
  await syncDirectory(outDir);
  await journal.record('renamed', { path: finalPath });
  if (crashAt === 'after-rename') crash();
  await pause(delayMs);

  const markerPath = join(outDir, markerName(runDate));
  const marker = await open(markerPath, 'w');
  await marker.sync();
  await marker.close();
  await journal.record('marked', { path: markerPath });
  if (crashAt === 'after-marker') crash();
  await pause(delayMs);

  await syncDirectory(outDir);
  await journal.record('done');
  return { finalPath, markerPath, settlements: settlements.length, bytes: output.length };
}

async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Splits at line boundaries into at most `count` roughly equal pieces. */
function splitAtLines(bytes: Buffer, count: number): Buffer[] {
  const pieces: Buffer[] = [];
  let start = 0;
  for (let i = 1; i < count && start < bytes.length; i++) {
    const target = Math.floor((bytes.length * i) / count);
    const newline = bytes.indexOf(0x0a, Math.max(target, start));
    if (newline === -1) break;
    pieces.push(bytes.subarray(start, newline + 1));
    start = newline + 1;
  }
  if (start < bytes.length) pieces.push(bytes.subarray(start));
  return pieces;
}
