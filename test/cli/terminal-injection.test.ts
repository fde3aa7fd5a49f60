// Attack (issue 9.11): text read from disk, the config or the audit log
// reaches a person's terminal. Every human view escapes control, bidi and
// invisible format characters, so none of it can drive the terminal.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import { run } from '../../src/cli/run.js';
import type { FileSystem } from '../../src/core/fs.js';
import { createProcessTable } from '../../src/core/process-table.js';
import { treeOf } from '../support/file-tree.js';
import { removeTempDir } from '../support/temp-dir.js';
import { makeTempLayout } from '../support/temp-layout.js';
import { ownIdentity } from '../support/identity.js';
import { realLockRuntime } from '../support/lock-runtime.js';
import { installedRunbooks } from '../../src/bin/runbook-files.js';

let root: string;
let outDir: string;
let stagingDir: string;
beforeEach(async () => {
  ({ root, outDir, stagingDir } = await makeTempLayout('crashdiag-escape-'));
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
    runCommand: async () => ({ exitStatus: null, signal: null, error: 'no commands in these tests' }),
    user: 'tester',
    identity: ownIdentity(),
    ...realLockRuntime(),
    runbooks: installedRunbooks(),
  };
  const code = await run([...args], io);
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

/** Nothing unprintable but the view's own newlines. */
function expectPrintable(text: string): void {
  expect(text.replace(/\n/g, '')).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u);
}

const ESC = '\u001b';

describe('attack (issue 9.11): no terminal injection from disk or the audit log', () => {
  it('history escapes every field of a planted audit record', async () => {
    const log = join(root, 'audit.jsonl');
    const record = {
      time: `2026-04-24T06:08:00Z${ESC}[2J`,
      user: `mallory${ESC}]0;pwned\u0007`,
      host: 'h\u202e',
      pid: 1,
      pipeline: null,
      run: '2026-04-24',
      op: `delete${ESC}[8m`,
      path: `/data/_staging/x${ESC}[H.csv`,
      bytes: `12${ESC}[1A`,
      writerPid: `7\u200b`,
      reason: `janitor${ESC}c`,
    };
    await fsp.writeFile(log, `${JSON.stringify(record)}\n`);
    const before = await treeOf(root);
    const { code, stdout } = await crashdiag(['history', '--audit-log', log]);
    expect(code).toBe(0);
    expectPrintable(stdout);
    for (const shown of ['\\x1b[2J', '\\x1b]0;pwned\\x07', 'h\\u{202e}', 'delete\\x1b[8m', 'x\\x1b[H.csv', '12\\x1b[1A', '7\\u{200b}', 'janitor\\x1bc'])
      expect(stdout.replace(/[│\s]+/g, '')).toContain(shown.replace(/\s+/g, ''));
    expect(await treeOf(root)).toEqual(before);
  });

  it('clean’s human output escapes a staging directory’s name', async () => {
    const evil = join(root, `stg${ESC}]0;pwned\u0007\u202e`);
    await fsp.mkdir(evil);
    const { code, stdout } = await crashdiag([
      'clean', '--out-dir', outDir, '--staging-dir', evil, '--final', 'r_{date}.csv', '--dry-run',
    ]);
    expect(code).toBe(0);
    expectPrintable(stdout);
    expect(stdout).toContain('stg\\x1b]0;pwned\\x07\\u{202e}');
  });

  it('diagnose’s human view escapes the directories it names', async () => {
    const evilOut = join(root, `out${ESC}[2J`);
    await fsp.mkdir(evilOut);
    const { stdout } = await crashdiag([
      'diagnose', '2026-04-24', '--out-dir', evilOut, '--staging-dir', stagingDir, '--final', 'r_{date}.csv',
    ]);
    expectPrintable(stdout);
    expect(stdout).toContain('out\\x1b[2J');
  });

  it('a refused run key is quoted escaped in the error', async () => {
    const { code, stderr } = await crashdiag([
      'diagnose', '2026-04-\u202e42', '--out-dir', outDir, '--staging-dir', stagingDir, '--final', 'r_{date}.csv',
    ]);
    expect(code).toBe(2);
    expectPrintable(stderr);
    expect(stderr).toContain('2026-04-\\u{202e}42');
    expect(stderr).toMatch(/invisible or bidi format character/);
  });
});
