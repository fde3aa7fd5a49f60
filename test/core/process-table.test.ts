import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createProcessTable } from '../../src/core/process-table.js';

const onLinux = process.platform === 'linux';
const children: ChildProcess[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
});

function spawnChild(args: string[], stdio: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
  const child = spawn(args[0] as string, args.slice(1), { stdio: ['ignore', stdio, 'ignore'] });
  children.push(child);
  return child;
}

/** Rejects on purpose with a code, as process.kill does. */
function killFailing(code: string) {
  return () => {
    throw Object.assign(new Error(`kill ${code}`), { code });
  };
}

describe('createProcessTable (the real OS)', () => {
  const table = createProcessTable();

  it('names this host', () => {
    expect(table.hostname).toBe(hostname());
  });

  it('sees this process alive, started before now', () => {
    const facts = table.inspect(process.pid);
    expect(facts.exists).toBe(true);
    if (onLinux) {
      expect(facts.zombie).toBe(false);
      expect(facts.startMs).toBeDefined();
      expect(facts.startMs).toBeLessThanOrEqual(Date.now());
      expect(facts.startMs).toBeGreaterThan(Date.now() - process.uptime() * 1000 - 5000);
    }
  });

  it.runIf(onLinux)('reads a new process’s start time in milliseconds since the epoch', async () => {
    const before = Date.now();
    const child = spawnChild([process.execPath, '-e', 'setTimeout(() => {}, 60000)']);
    await once(child, 'spawn');
    const facts = table.inspect(child.pid as number);
    expect(facts.exists).toBe(true);
    // /proc gives the start in clock ticks on top of a boot time rounded to the second.
    expect(facts.startMs).toBeGreaterThanOrEqual(before - 2000);
    expect(facts.startMs).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it('does not see a child that has exited and been reaped', async () => {
    const child = spawnChild([process.execPath, '-e', '']);
    const pid = child.pid as number;
    await once(child, 'exit');
    expect(table.inspect(pid)).toEqual({ exists: false });
  });

  it('does not see a SIGKILLed child once it is reaped', async () => {
    const child = spawnChild([process.execPath, '-e', 'setTimeout(() => {}, 60000)']);
    await once(child, 'spawn');
    const pid = child.pid as number;
    expect(table.inspect(pid).exists).toBe(true);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(table.inspect(pid)).toEqual({ exists: false });
  });

  it.runIf(onLinux)('answers for a dead PID without the exception process.kill would build (100,000 orphans: 0.6 s)', async () => {
    const child = spawnChild([process.execPath, '-e', '']);
    const pid = child.pid as number;
    await once(child, 'exit');
    const kill = vi.spyOn(process, 'kill');
    expect(table.inspect(pid)).toEqual({ exists: false });
    expect(kill).not.toHaveBeenCalled();
    // A live one still goes through process.kill, whose every answer is handled below.
    table.inspect(process.pid);
    expect(kill).toHaveBeenCalledWith(process.pid, 0);
  });

  it.runIf(onLinux)('sees an exited but unreaped process as a zombie', async () => {
    // sh starts a background child that waits on fd 3, then becomes `sleep`, which never reaps it.
    // The child is let go only once its parent is `sleep`: had it exited while sh still ran, sh
    // could have reaped it (and did, once in a fresh run).
    const parent = spawn('sh', ['-c', 'read x <&3 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore', 'pipe'] });
    children.push(parent);
    const [line] = (await once(parent.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
    const zombiePid = Number(line.toString().trim());
    expect(Number.isSafeInteger(zombiePid)).toBe(true);
    // Polled until the parent has become `sleep` (the test's timeout bounds the wait).
    while (readFileSync(`/proc/${parent.pid}/comm`, 'utf8').trim() !== 'sleep')
      await new Promise((resolve) => setTimeout(resolve, 5));
    (parent.stdio[3] as NodeJS.WritableStream).end('go\n');
    // Polled until the kernel shows it: how long the child takes to exit is the machine's load.
    let facts = table.inspect(zombiePid);
    while (facts.exists && !facts.zombie) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      facts = table.inspect(zombiePid);
    }
    expect(facts.exists).toBe(true);
    expect(facts.zombie).toBe(true);
  });

  it.each([0, -1, -process.pid, -process.pid * 2, Number.NaN, 1.5, Number.POSITIVE_INFINITY, 2 ** 53])(
    'never signals for PID %d (0 and negatives address process groups)',
    (pid) => {
      const kill = vi.spyOn(process, 'kill');
      expect(table.inspect(pid)).toEqual({ exists: false });
      expect(kill).not.toHaveBeenCalled();
    },
  );

  it('signals with 0 only: it asks, it never kills', () => {
    const kill = vi.spyOn(process, 'kill');
    table.inspect(process.pid);
    expect(kill).toHaveBeenCalledWith(process.pid, 0);
  });

  it('counts a process it may not signal (EPERM) as alive', () => {
    vi.spyOn(process, 'kill').mockImplementation(killFailing('EPERM'));
    expect(table.inspect(process.pid).exists).toBe(true);
  });

  it('lets an unexpected signal error through', () => {
    vi.spyOn(process, 'kill').mockImplementation(killFailing('EINVAL'));
    expect(() => table.inspect(process.pid)).toThrow(/EINVAL/);
  });
});
