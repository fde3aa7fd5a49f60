// Attack (issue 9.11): a staging file whose name is not valid UTF-8. Node
// reads each bad byte as U+FFFD, a string that names no file: such a file
// must be reported (its bytes escaped), and never deleted.
import { readdirSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import { run } from '../../src/cli/run.js';
import type { FileSystem } from '../../src/core/fs.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { escapeNameBytes } from '../../src/core/probe.js';
import { removeTempDir } from '../support/temp-dir.js';
import { makeTempLayout } from '../support/temp-layout.js';
import { ownIdentity } from '../support/identity.js';
import { realLockRuntime } from '../support/lock-runtime.js';
import { installedRunbooks } from '../../src/bin/runbook-files.js';

const KEY = '2026-04-24';
let root: string;
let outDir: string;
let stagingDir: string;
beforeEach(async () => {
  ({ root, outDir, stagingDir } = await makeTempLayout('crashdiag-bytes-'));
});
afterEach(() => removeTempDir(root));

async function crashdiag(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIo = {
    stdout: { write: (chunk: string) => stdout.push(chunk), isTTY: false },
    stderr: { write: (chunk: string) => stderr.push(chunk), isTTY: false },
    env: { NO_COLOR: '1' },
    cwd: root,
    fs: fsp as FileSystem,
    processes: createProcessTable(),
    now: () => Date.now(),
    sleep: (ms) => sleep(ms),
    runCommand: async () => ({ exitStatus: 0, signal: null }),
    user: 'tester',
    identity: ownIdentity(),
    ...realLockRuntime(),
    runbooks: installedRunbooks(),
  };
  const code = await run([...args], io);
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

const layout = () => ['--out-dir', outDir, '--staging-dir', stagingDir, '--final', 'r_{date}.csv'];

/** A file whose name is these bytes, inside the staging directory. */
async function plant(name: Buffer, content: string): Promise<void> {
  await fsp.writeFile(Buffer.concat([Buffer.from(`${stagingDir}/`), name]), content);
}

async function bytesSnapshot(): Promise<string[]> {
  const lines: string[] = [];
  for (const name of readdirSync(stagingDir, { encoding: 'buffer' })) {
    if (name.toString() === '.crashdiag') continue;
    const path = Buffer.concat([Buffer.from(`${stagingDir}/`), name]);
    const stats = await fsp.lstat(path);
    lines.push(`${name.toString('hex')} ${stats.ino} ${stats.mtimeMs} ${(await fsp.readFile(path)).toString('hex')}`);
  }
  return lines.sort();
}

describe('attack (issue 9.11): a staging name that is not valid UTF-8', () => {
  it('escapes bad bytes and keeps valid UTF-8', () => {
    expect(escapeNameBytes(Buffer.from([0x61, 0xff, 0x62]))).toBe('a\\xffb');
    expect(escapeNameBytes(Buffer.from('é🚀', 'utf8'))).toBe('é🚀');
    expect(escapeNameBytes(Buffer.from([0xc3]))).toBe('\\xc3');
    expect(escapeNameBytes(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\\xed\\xa0\\x80');
    expect(escapeNameBytes(Buffer.from([0xc0, 0xaf]))).toBe('\\xc0\\xaf');
  });

  it('diagnose reports it as an anomaly with its bytes escaped, and --fix deletes nothing', async () => {
    await plant(Buffer.concat([Buffer.from(`${KEY}.`), Buffer.from([0xff]), Buffer.from('.csv')]), 'partial');
    const before = await bytesSnapshot();
    const { code, stdout } = await crashdiag(['diagnose', KEY, ...layout(), '--json']);
    expect(code).toBe(30);
    const json = JSON.parse(stdout) as { state: string; anomalies: Array<{ path: string; reason: string }> };
    expect(json.state).toBe('UNKNOWN');
    expect(json.anomalies).toEqual([
      { path: join(stagingDir, `${KEY}.\\xff.csv`), reason: expect.stringMatching(/not valid UTF-8.*never deleted/) },
    ]);
    const human = await crashdiag(['diagnose', KEY, ...layout()]);
    expect(human.stdout).toContain(`${KEY}.\\xff.csv`);
    const fixed = await crashdiag(['diagnose', KEY, ...layout(), '--fix', '--rerun', 'job {date}']);
    expect(fixed.code).toBe(30);
    expect(await bytesSnapshot()).toEqual(before);
  });

  it('clean and scan report one whose key reads with U+FFFD, and clean deletes nothing', async () => {
    // Run key bytes "2026-04-24\xff", a PID that is dead, a day old by its mtime and by the clock.
    await plant(Buffer.concat([Buffer.from(KEY), Buffer.from([0xff]), Buffer.from('.99999.csv')]), 'partial');
    const before = await bytesSnapshot();
    const cleaned = await crashdiag([
      'clean', ...layout(), '--older-than', '0s', '--force-short-threshold', '--json',
    ]);
    expect(cleaned.code).toBe(0);
    type Report = { removed: unknown[]; kept: Array<{ reason: string }> };
    const report = (JSON.parse(cleaned.stdout) as { pipelines: Report[] }).pipelines[0];
    expect(report?.removed).toEqual([]);
    expect(report?.kept.map((k) => k.reason)).toEqual([expect.stringMatching(/not valid UTF-8/)]);
    const scanned = await crashdiag(['scan', ...layout(), '--json']);
    const rows = (JSON.parse(scanned.stdout) as { runs: Array<{ state: string; anomalies: number }> }).runs;
    expect(rows.map((r) => [r.state, r.anomalies])).toEqual([['UNKNOWN', 1]]);
    expect(await bytesSnapshot()).toEqual(before);
  });
});
