import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promises as fsp, lstatSync, readFileSync, type Stats, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AuditRecord, readAudit } from '../../src/core/audit.js';
import type { FileSystem } from '../../src/core/fs.js';
import { createProcessTable, type ProcessTable } from '../../src/core/process-table.js';
import type { Finished } from '../support/built-bin.js';
import { changedAtMtimeFs } from '../support/ctime.js';
import { snapshot, treeOf } from '../support/file-tree.js';
import { makeTempDir, removeTempDir } from '../support/temp-dir.js';
import { makeTempLayout } from '../support/temp-layout.js';
import { exists, untilQuietFor } from '../support/disk.js';
import { deadPids } from '../support/dead-pids.js';
import { crashdiagInProcess } from '../support/in-process.js';
import { hookSync } from '../support/sync-hook.js';

const FINAL = 'r_{date}.csv';
const KEY = '2026-04-24';

let root: string;
let outDir: string;
let stagingDir: string;

beforeEach(async () => {
  ({ root, outDir, stagingDir } = await makeTempLayout('crashdiag-attack-janitor-'));
});
afterEach(() => removeTempDir(root));

/** Every file's bytes, size and mtime, crashdiag's own state directory (its lock, its log) left out. */
const dataOf = async (dir: string) => (await snapshot(dir)).filter((line) => !line.includes('/.crashdiag'));

const layout = () => ['--out-dir', outDir, '--staging-dir', stagingDir, '--final', FINAL];

/** crashdiag in process, on the real disk, process table and clock. */
function crashdiag(
  args: readonly string[],
  fs: FileSystem = fsp,
  processes: ProcessTable = createProcessTable(),
): Promise<Finished> {
  return crashdiagInProcess(args, root, {
    fs,
    processes,
    runCommand: async () => ({ exitStatus: null, signal: null, error: 'no re-run in these tests' }),
    user: 'attacker-test',
  });
}

function hasCompiler(): boolean {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// A writer whose main thread has exited while another thread still holds the
// staging file open and writes it: /proc/<pid>/stat shows the thread-group
// leader as Z, yet the process lives (Threads: 2).
const LEADER_EXITS_EARLY = String.raw`
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <fcntl.h>
static int fd;
static void *worker(void *arg) { (void)arg; for (;;) pause(); return 0; }
int main(int argc, char **argv) {
  char name[4096];
  if (argc < 3) return 2;
  snprintf(name, sizeof name, "%s/%s.%d.csv", argv[1], argv[2], (int)getpid());
  fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0 || write(fd, "id,amount\n", 10) != 10 || fsync(fd) != 0) return 1;
  pthread_t thread;
  if (pthread_create(&thread, 0, worker, 0) != 0) return 1;
  printf("%d\n", (int)getpid());
  fflush(stdout);
  pthread_exit(0);
}
`;

describe.runIf(process.platform === 'linux' && hasCompiler())('attack: a writer whose main thread exited, its other thread still writing', () => {
  let bin: string;
  let binDir: string;
  let writer: ChildProcess | undefined;
  beforeAll(async () => {
    binDir = await makeTempDir('crashdiag-leader-');
    await fsp.writeFile(join(binDir, 'writer.c'), LEADER_EXITS_EARLY);
    bin = join(binDir, 'writer');
    execFileSync('cc', ['-pthread', '-o', bin, join(binDir, 'writer.c')]);
  });
  afterAll(() => removeTempDir(binDir));
  afterEach(async () => {
    if (writer && writer.exitCode === null && writer.signalCode === null) {
      writer.kill('SIGKILL');
      await once(writer, 'exit');
    }
    writer = undefined;
  });

  /** Starts the writer and waits until its thread-group leader reads as a zombie. */
  async function leaderGoneWriterAlive(): Promise<number> {
    writer = spawn(bin, [stagingDir, KEY], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(writer.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
    const pid = Number(line.toString().trim());
    const state = () => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    for (let i = 0; i < 500 && state() !== 'Z'; i++) await sleep(10);
    expect(state()).toBe('Z');
    return pid;
  }

  it('diagnose --fix calls it RUNNING and deletes nothing, the disk unchanged byte for byte', async () => {
    const pid = await leaderGoneWriterAlive();
    const before = await dataOf(root);
    const result = await crashdiag(['diagnose', KEY, ...layout(), '--fix', '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(20);
    expect(JSON.parse(result.stdout)).toMatchObject({ state: 'RUNNING', orphans: [{ pid, writer: 'alive' }] });
    expect(await dataOf(root)).toEqual(before);
  });

  it('clean keeps it whatever the threshold', async () => {
    const pid = await leaderGoneWriterAlive();
    // Past --older-than 1ms by its last change (the ctime cannot be set back): wait for that, not for a guess.
    await untilQuietFor(join(stagingDir, `${KEY}.${pid}.csv`), 2);
    const before = await dataOf(root);
    const result = await crashdiag(['clean', ...layout(), '--older-than', '1ms', '--force-short-threshold', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ pipelines: [{ files: 0, removed: [] }] });
    expect(await dataOf(root)).toEqual(before);
  });
});

describe('attack: a hostile audit log read back by diagnose (attempts) and history', () => {
  // Each line parses as JSON, yet none is a record crashdiag wrote: any user who can write the log can plant them.
  const HOSTILE = [
    'null',
    '5',
    '"text"',
    '[1,2]',
    JSON.stringify({ op: 'rerun', run: KEY, time: '2026-04-24T06:00:00Z', command: 'rm -rf /', exitStatus: 1 }),
    JSON.stringify({ op: 'delete', run: KEY, path: 7, writerPid: 5, time: '2026-04-24T06:00:00Z' }),
    JSON.stringify({ op: { x: 1 }, run: KEY, path: ['a'], writerPid: 'five', bytes: 'many', user: {}, host: [] }),
  ];

  async function plant(extra: readonly string[] = []): Promise<string> {
    const log = join(stagingDir, '.crashdiag', 'audit.jsonl');
    await fsp.mkdir(join(stagingDir, '.crashdiag'));
    await fsp.writeFile(log, `${[...HOSTILE, ...extra].join('\n')}\n`);
    return log;
  }

  it('diagnose is not thrown off: no stack, the state read from the disk, a true record still counted', async () => {
    const counted = JSON.stringify({
      time: '2026-04-24T06:00:00Z', user: 'u', host: 'h', pid: 1, pipeline: null, run: KEY, op: 'delete',
      path: join(stagingDir, `${KEY}.4242.csv`), bytes: 3, mtime: '2026-04-24T05:59:00Z', writerPid: 4242,
    });
    await plant([counted]);
    const before = await snapshot(root);
    const result = await crashdiag(['diagnose', KEY, ...layout(), '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(10);
    const report = JSON.parse(result.stdout) as { state: string; attempts: { list: Array<{ pid: number | null }> } };
    expect(report.state).toBe('A/B/C');
    expect(report.attempts.list.map((a) => a.pid)).toContain(4242);
    expect(await snapshot(root)).toEqual(before);
  });

  it('history shows it without a stack, as a table and as JSON', async () => {
    await plant();
    for (const extra of [[], ['--json']]) {
      const result = await crashdiag(['history', '--staging-dir', stagingDir, ...extra]);
      expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    }
  });
});

describe('attack: a file rewritten between the janitor\'s look and its unlink', () => {
  it('a new writer reusing the name (containers: every attempt is PID 7) while the intents are fsynced: kept, its bytes intact, the skip audited', async () => {
    // Writers in containers of their own PID namespace: --no-pid-check, judged by age; each attempt is PID 7.
    const orphan = join(stagingDir, `${KEY}.7.csv`);
    const other = join(stagingDir, `${KEY}.8.csv`);
    const old = (Date.now() - 2 * 86_400_000) / 1000;
    for (const path of [orphan, other]) {
      await fsp.writeFile(path, 'a dead attempt\n');
      await fsp.utimes(path, old, old);
    }
    const log = join(stagingDir, '.crashdiag', 'audit.jsonl');
    // The next attempt starts as the intents are being made durable: it opens the same name and writes.
    let rewritten = false;
    const base = changedAtMtimeFs(fsp);
    const fs = hookSync(base, log, async (nth, sync) => {
      if (nth === 1) {
        rewritten = true;
        await fsp.writeFile(orphan, 'the next attempt, at work\n');
      }
      return sync();
    });
    const result = await crashdiag(['clean', ...layout(), '--no-pid-check', '--json'], fs);
    expect(rewritten).toBe(true);
    expect(result.code).toBe(0);
    expect(await fsp.readFile(orphan, 'utf8')).toBe('the next attempt, at work\n');
    await expect(fsp.access(other)).rejects.toThrow();
    const report = JSON.parse(result.stdout) as {
      pipelines: Array<{ removed: Array<{ path: string }>; kept: Array<{ path: string; reason: string }> }>;
    };
    expect(report.pipelines[0]?.removed.map((f) => f.path)).toEqual([other]);
    expect(report.pipelines[0]?.kept).toEqual([{ path: orphan, reason: expect.stringMatching(/changed since/) as string }]);
    const records = await readAudit(fsp, log);
    const about = (path: string) => records.filter((r: AuditRecord) => r.path === path).map((r) => r.op);
    expect(about(orphan)).toEqual(['intent', 'skip']);
    expect(about(other)).toEqual(['intent', 'delete']);
  });
});

describe('attack: an audit log larger than one string can hold', () => {
  it('600 MiB with a record at its end: diagnose counts the record and history shows it, no stack', async () => {
    const log = join(stagingDir, '.crashdiag', 'audit.jsonl');
    await fsp.mkdir(join(stagingDir, '.crashdiag'));
    // Sparse: 600 MiB of NULs costs no disk, and reads past V8's 512 MiB string limit.
    await fsp.writeFile(log, '');
    await fsp.truncate(log, 600 * 1024 * 1024);
    const record = {
      time: '2026-04-24T06:00:00Z', user: 'u', host: 'h', pid: 1, pipeline: null, run: KEY, op: 'delete',
      path: join(stagingDir, `${KEY}.4242.csv`), bytes: 3, mtime: '2026-04-24T05:59:00Z', writerPid: 4242,
    };
    await fsp.appendFile(log, `\n${JSON.stringify(record)}\n`);
    // The log itself is too big to snapshot by content: its size and mtime stand for it.
    const logFacts = async () => {
      const stats = await fsp.stat(log);
      return [stats.size, stats.mtimeMs];
    };
    const before = [await treeOf(root), await logFacts()];
    const diagnosed = await crashdiag(['diagnose', KEY, ...layout(), '--json']);
    expect(diagnosed.stderr).toBe('');
    expect(diagnosed.code).toBe(10);
    const report = JSON.parse(diagnosed.stdout) as { attempts: { list: Array<{ pid: number | null }> } };
    expect(report.attempts.list.map((a) => a.pid)).toEqual([4242]);
    const history = await crashdiag(['history', '--staging-dir', stagingDir, '--json']);
    expect({ code: history.code, stderr: history.stderr }).toEqual({ code: 0, stderr: '' });
    const shown = JSON.parse(history.stdout) as { records: Array<{ op: string; reason?: string; writerPid?: number }> };
    expect(shown.records.map((r) => r.op)).toEqual(['skip', 'delete']);
    expect(shown.records[0]?.reason).toMatch(/line 1 .* is longer than any record/);
    expect([await treeOf(root), await logFacts()]).toEqual(before);
  }, 60_000);

  it('held: records straddling the read chunks come back whole, in order (3 MiB of records)', async () => {
    const log = join(root, 'audit.jsonl');
    const records = Array.from({ length: 12_000 }, (_, i) => ({
      time: '2026-04-24T06:00:00Z', user: 'u', host: 'h', pid: i, pipeline: null, run: KEY, op: 'delete',
      path: join(stagingDir, `${KEY}.${i + 1}.csv`), reason: 'x'.repeat(i % 300),
    }));
    await fsp.writeFile(log, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    expect((await fsp.stat(log)).size).toBeGreaterThan(3 * 1024 * 1024);
    expect(await readAudit(fsp as FileSystem, log)).toEqual(records);
  });
});

describe('attack: a running writer whose start time cannot be read (/proc mounted hidepid=2, the writer another user\'s)', () => {
  // What the real table says there: signal 0 answers EPERM (it exists), /proc/<pid>/stat is hidden.
  const WRITER = 4_000_001;
  const hidden: ProcessTable = {
    hostname: createProcessTable().hostname,
    inspect: (pid) => (pid === WRITER ? { exists: true } : createProcessTable().inspect(pid)),
  };
  async function stalledWriterFile(): Promise<string> {
    const path = join(stagingDir, `${KEY}.${WRITER}.csv`);
    await fsp.writeFile(path, 'id,amount\n1,2\n');
    const old = (Date.now() - 2 * 86_400_000) / 1000;
    await fsp.utimes(path, old, old);
    return path;
  }

  it('its file, quiet for two days (a stalled writer), is not deleted by diagnose --fix: UNKNOWN, the disk unchanged byte for byte', async () => {
    await stalledWriterFile();
    const before = await dataOf(root);
    const result = await crashdiag(['diagnose', KEY, ...layout(), '--fix', '--json'], changedAtMtimeFs(fsp), hidden);
    expect(result.code).toBe(30);
    expect(JSON.parse(result.stdout)).toMatchObject({ state: 'UNKNOWN', orphans: [{ pid: WRITER, writer: 'unknown' }] });
    expect(await dataOf(root)).toEqual(before);
  });

  it('nor by clean', async () => {
    const path = await stalledWriterFile();
    const before = await dataOf(root);
    const result = await crashdiag(['clean', ...layout(), '--json'], changedAtMtimeFs(fsp), hidden);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      pipelines: Array<{ files: number; kept: Array<{ path: string; reason: string }> }>;
    };
    expect(report.pipelines[0]?.files).toBe(0);
    expect(report.pipelines[0]?.kept).toEqual([{ path, reason: expect.stringMatching(/cannot be ruled out/) as string }]);
    expect(await dataOf(root)).toEqual(before);
  });
});

describe('held: a lock name that is a hard link to a published output', () => {
  it('clean takes the stale "lock" over by moving that name aside: the output keeps its name and bytes', async () => {
    const output = join(outDir, `r_${KEY}.csv`);
    const marker = `${output}.success`;
    await fsp.writeFile(output, 'id,amount\n1,2\n');
    await fsp.writeFile(marker, '');
    await fsp.mkdir(join(stagingDir, '.crashdiag'));
    const lock = join(stagingDir, '.crashdiag', '.clean.lock');
    await fsp.link(output, lock);
    const old = (Date.now() - 2 * 86_400_000) / 1000;
    await fsp.utimes(output, old, old);
    const orphan = join(stagingDir, `${KEY}.4000001.csv`);
    await fsp.writeFile(orphan, 'dead\n');
    await fsp.utimes(orphan, old, old);
    const before = await snapshot(outDir);
    const result = await crashdiag(['clean', ...layout(), '--json'], changedAtMtimeFs(fsp));
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ pipelines: [{ removed: [{ path: orphan }] }] });
    expect(await snapshot(outDir)).toEqual(before);
    expect((await fsp.stat(output)).nlink).toBe(1);
    await expect(fsp.lstat(lock)).rejects.toThrow();
  });
});

describe('attack: the audit log\'s fsync fails (EIO) on the last batch, while the batch before is removed', () => {
  const DAY_MS = 86_400_000;
  /** The real disk, two days on; the audit log's `failing`-th fsync fails as a dying disk's does. */
  function syncFailsAt(failing: number, sync: boolean): FileSystem {
    const log = join(stagingDir, '.crashdiag', 'audit.jsonl');
    const base: FileSystem = sync ? { ...(fsp as FileSystem), lstatSync, unlinkSync } : { ...(fsp as FileSystem) };
    return hookSync(base, log, async (nth, real) => {
      if (nth === failing) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
      return real();
    });
  }

  for (const [label, count, failing, removedCount] of [
    ['one batch of 5 files (fewer than the head start)', 5, 1, 0],
    ['a full batch, then 5 more (the last batch\'s fsync under the removals)', 1024 + 5, 2, 1024],
  ] as const) {
    for (const sync of [true, false]) {
      it(`${label}, ${sync ? 'synchronous calls' : 'promises only'}: exit 30 naming the log, no stack, the unsynced files all there, --json and the log agree`, async () => {
        const [pid] = deadPids(1);
        const paths: string[] = [];
        for (let i = 0; i < count; i++) {
          const day = new Date(Date.parse('2020-01-01') + i * DAY_MS).toISOString().slice(0, 10);
          const path = join(stagingDir, `${day}.${pid}.csv`);
          await fsp.writeFile(path, `orphan ${i}`);
          paths.push(path);
        }
        paths.sort();
        const log = join(stagingDir, '.crashdiag', 'audit.jsonl');
        const before = await dataOf(root);
        const result = await crashdiagInProcess(['clean', ...layout(), '--json'], root, {
          fs: syncFailsAt(failing, sync),
          now: () => Date.now() + 2 * DAY_MS,
          runCommand: async () => ({ exitStatus: null, signal: null, error: 'no re-run in these tests' }),
          user: 'attacker-test',
        });
        expect(result.code).toBe(30);
        expect(result.stderr).not.toMatch(/\n\s+at /);
        const report = JSON.parse(result.stdout) as {
          pipelines: Array<{ removed: Array<{ path: string }>; failed: Array<{ path: string; reason: string }> }>;
        };
        const pipeline = report.pipelines[0];
        const removed = (pipeline?.removed ?? []).map((f) => f.path).sort();
        // Batches go in listing order: which files made the first one is the directory's business.
        expect(removed).toHaveLength(removedCount);
        for (const path of removed) expect(await exists(path)).toBe(false);
        const kept = paths.filter((path) => !removed.includes(path));
        const keptLine = (line: string) => kept.some((p) => line.startsWith(`${p} `));
        expect((await dataOf(root)).filter(keptLine)).toEqual(before.filter(keptLine));
        expect(before.filter(keptLine)).toHaveLength(kept.length);
        expect(pipeline?.failed.map((f) => f.path).sort()).toEqual(kept);
        for (const f of pipeline?.failed ?? []) expect(f.reason).toContain(log);
        const records = await readAudit(fsp, log);
        const deleted = records.filter((r) => r.op === 'delete').map((r) => r.path).sort();
        expect(deleted).toEqual(removed);
      });
    }
  }
});

describe('attack: an orphan whose mtime no Date can hold (tmpfs, btrfs: touch -d @-9000000000000)', () => {
  /** A dead writer's orphan, and a disk whose lstat (promise or synchronous) gives it an mtime past any date. */
  async function farOrphan(): Promise<{ path: string; disk: FileSystem }> {
    const [pid] = deadPids(1);
    const path = join(stagingDir, `${KEY}.${pid}.csv`);
    await fsp.writeFile(path, 'partial');
    const far = { mtimeMs: -9e15, mtime: new Date(-9e15) };
    const disk: FileSystem = {
      ...(fsp as FileSystem),
      lstat: (async (...args: Parameters<FileSystem['lstat']>) => {
        const stats = await fsp.lstat(...(args as [string]));
        return String(args[0]) === path ? Object.assign(stats, far) : stats;
      }) as FileSystem['lstat'],
      lstatSync: ((...args: Parameters<typeof lstatSync>) => {
        const stats = lstatSync(...args) as Stats;
        return String(args[0]) === path ? Object.assign(stats, far) : stats;
      }) as typeof lstatSync,
    };
    return { path, disk };
  }

  it('diagnose names the state and exits with its code, human or JSON, no stack; with --max-attempts 1 too', async () => {
    const { disk } = await farOrphan();
    const before = await snapshot(root);
    const codes: Array<number | null> = [];
    for (const extra of [[], ['--json'], ['--max-attempts', '1'], ['--max-attempts', '1', '--json']]) {
      const result = await crashdiag(['diagnose', KEY, ...layout(), ...extra], disk);
      expect({ extra, stderr: result.stderr }).toEqual({ extra, stderr: expect.not.stringMatching(/\n\s+at /) as string });
      codes.push(result.code);
    }
    // D, then a crash loop of one attempt: the same in both views.
    expect(codes).toEqual([11, 11, 15, 15]);
    expect(await snapshot(root)).toEqual(before);
  });

  it('diagnose --fix keeps the file (no record could hold its age), refuses with a reason, no stack', async () => {
    const { path, disk } = await farOrphan();
    const result = await crashdiag(['diagnose', KEY, ...layout(), '--fix', '--json'], disk);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(await fsp.readFile(path, 'utf8')).toBe('partial');
    expect(result.stdout).toContain('beyond any date a record can hold');
    expect(result.code).not.toBe(1);
  });
});
