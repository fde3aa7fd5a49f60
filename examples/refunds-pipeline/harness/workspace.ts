import { mkdir, mkdtemp, readdir, readFile, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finalName, isStagingNameFor, markerName } from '../names.js';
import {
  describeS3, hasS3Marker, readS3Output, type S3Site, s3StagingObjectsFor,
} from './s3-workspace.js';

/** One pipeline's directories, as a job's deployment would lay them out. */
export interface Workspace {
  dir: string;
  /** A directory, or an s3:// URL when `s3` is set. */
  outDir: string;
  stagingDir: string;
  inputPath: string;
  journalPath: string;
  /** Set when out/ and staging are S3 prefixes (harness/s3-workspace.ts). */
  s3?: S3Place;
}

/** Where an S3 workspace's prefixes are. */
export interface S3Place {
  site: S3Site;
  outPrefix: string;
  stagingPrefix: string;
}

/** A fresh temporary directory, resolved: crashdiag compares realpaths. */
export async function makeTempRoot(prefix: string): Promise<string> {
  return realpath(await mkdtemp(join(tmpdir(), prefix)));
}

export async function createWorkspace(dir: string, inputPath = join(dir, 'input.csv')): Promise<Workspace> {
  const ws = {
    dir,
    outDir: join(dir, 'out'),
    stagingDir: join(dir, '_staging'),
    inputPath,
    journalPath: join(dir, 'journal.jsonl'),
  };
  await mkdir(ws.outDir, { recursive: true });
  await mkdir(ws.stagingDir, { recursive: true });
  return ws;
}

export function removeTree(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

export function finalPath(ws: Workspace, key: string): string {
  return join(ws.outDir, finalName(key));
}

export function markerPath(ws: Workspace, key: string): string {
  return join(ws.outDir, markerName(key));
}

/** Staging files (or objects) of this run key, any writer. */
export async function stagingFilesFor(ws: Workspace, key: string): Promise<string[]> {
  if (ws.s3) return s3StagingObjectsFor(ws.s3, key);
  return (await readdir(ws.stagingDir)).filter((name) => isStagingNameFor(name, key)).sort();
}

export async function readOutput(ws: Workspace, key: string): Promise<Buffer | null> {
  if (ws.s3) return readS3Output(ws.s3, key);
  try {
    return await readFile(finalPath(ws, key));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

export async function hasMarker(ws: Workspace, key: string): Promise<boolean> {
  return ws.s3 ? hasS3Marker(ws.s3, key) : exists(markerPath(ws, key));
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A one-line-per-file picture of the workspace, for failure reports. */
export async function describeDisk(ws: Workspace): Promise<string> {
  if (ws.s3) return (await describeS3(ws.s3)).join('\n');
  const lines: string[] = [];
  for (const dir of [ws.outDir, ws.stagingDir]) {
    for (const name of (await readdir(dir).catch(() => [])).sort()) {
      const s = await stat(join(dir, name)).catch(() => null);
      lines.push(`  ${join(dir, name)}  ${s ? `${s.size} bytes` : '?'}`);
    }
  }
  return lines.length > 0 ? lines.join('\n') : '  (out/ and staging are empty)';
}
