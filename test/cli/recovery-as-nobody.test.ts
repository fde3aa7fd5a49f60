// Permission cases for the recovery loop, run as an unprivileged user (root
// reads everything): an input crashdiag cannot read makes the run BLOCKED,
// and a kernel log it may not read is a note saying how to allow it, never an
// error. Skipped where setpriv or root is missing.
import { spawnSync } from 'node:child_process';
import { chmodSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { collectOutput, copyBuiltBin } from '../support/built-bin.js';
import { deadPid } from '../support/dead-pids.js';
import { treeOf } from '../support/file-tree.js';
import { KEY, stagingPathFor, writeAged } from '../support/pipeline-files.js';
import { removeTempDir } from '../support/temp-dir.js';
import { type Layout, makeTempLayout } from '../support/temp-layout.js';
import { spawn } from 'node:child_process';

const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
const canDrop = process.getuid?.() === 0 && spawnSync('setpriv', [...NOBODY, 'true']).status === 0;
let bin: string;
let shared: string;
let layout: Layout;

beforeAll(async () => {
  if (!canDrop) {
    console.warn('skipping the unprivileged-user tests: not root, or no setpriv');
    return;
  }
  ({ bin, dir: shared } = await copyBuiltBin());
  // The copy lives in a 0700 temp dir: let the unprivileged user reach the bundle.
  spawnSync('chmod', ['-R', 'a+rX', shared]);
});
afterAll(() => (shared ? removeTempDir(shared) : undefined));
beforeEach(async () => {
  layout = await makeTempLayout('crashdiag-nobody-');
  chmodSync(layout.root, 0o755);
});
afterEach(() => removeTempDir(layout.root));

async function asNobody(args: readonly string[]) {
  const child = spawn('setpriv', [...NOBODY, process.execPath, bin, ...args], {
    cwd: '/',
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collectOutput(child, 30_000);
}

const layoutFlags = () => ['--out-dir', layout.outDir, '--staging-dir', layout.stagingDir, '--final', 'report_{date}.csv'];

describe.skipIf(!canDrop)('as an unprivileged user', () => {
  it('an input it cannot read (mode 0600, another owner): BLOCKED, exit 16, nothing changed', async () => {
    const input = join(layout.root, `refunds_${KEY}.csv`);
    await fs.writeFile(input, 'refund_id\n1\n');
    chmodSync(input, 0o600);
    const before = await treeOf(layout.root);
    const result = await asNobody(['diagnose', KEY, ...layoutFlags(), '--input', join(layout.root, 'refunds_{date}.csv'), '--json']);
    expect(result.code, result.stderr).toBe(16);
    const report = JSON.parse(result.stdout) as { state: string; inputs: Array<{ status: string; detail: string }> };
    expect(report.state).toBe('BLOCKED');
    expect(report.inputs).toEqual([expect.objectContaining({ status: 'unreadable', detail: 'cannot be read (EACCES)' })]);
    expect(await treeOf(layout.root)).toEqual(before);
  });

  it('an input in a directory it cannot enter: BLOCKED, not a stack trace', async () => {
    const dir = join(layout.root, 'in');
    await fs.mkdir(dir, { mode: 0o700 });
    await fs.writeFile(join(dir, `refunds_${KEY}.csv`), 'refund_id\n1\n');
    const result = await asNobody(['diagnose', KEY, ...layoutFlags(), '--input', join(dir, 'refunds_{date}.csv')]);
    expect(result.code, result.stderr).toBe(16);
    expect(result.stderr).not.toMatch(/unexpected error/);
    expect(result.stdout).toContain('cannot be read (EACCES)');
  });

  it('a kernel log it may not read (dmesg_restrict): a note with how to allow it, the diagnosis unchanged', async () => {
    await writeAged(stagingPathFor(layout, deadPid()), 'partial');
    const result = await asNobody(['diagnose', KEY, ...layoutFlags(), '--json']);
    expect(result.code, result.stderr).toBe(11);
    const report = JSON.parse(result.stdout) as { state: string; causeNotes: string[] };
    expect(report.state).toBe('D');
    const restricted = (await fs.readFile('/proc/sys/kernel/dmesg_restrict', 'utf8')).trim() === '1';
    if (restricted) {
      expect(report.causeNotes).toEqual([expect.stringMatching(/the kernel log cannot be read .*run crashdiag as root/)]);
    }
  });

  it('attack: an output directory it may enter but not list (0711), with older outputs: D, exit 11, no partial write guessed', async () => {
    await fs.writeFile(join(layout.outDir, 'report_2026-04-23.csv'), 'x'.repeat(1000));
    await writeAged(stagingPathFor(layout, deadPid()), 'y'.repeat(250));
    chmodSync(layout.outDir, 0o711);
    const before = await treeOf(layout.root);
    const result = await asNobody(['diagnose', KEY, ...layoutFlags(), '--json']);
    expect(result.code, result.stderr).toBe(11);
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as { state: string; causes: Array<{ kind: string }> };
    expect(report.state).toBe('D');
    expect(report.causes.map((c) => c.kind)).not.toContain('partial-write');
    expect(await treeOf(layout.root)).toEqual(before);
  });
});
