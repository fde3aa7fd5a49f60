import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';
import type { KernelLog, KernelLogReader } from '../core/kernel-log.js';

const HOW_TO_ALLOW
  = 'run crashdiag as root, or let its user read the kernel log: add it to the systemd-journal (or adm) group '
    + 'for journalctl -k, or set sysctl kernel.dmesg_restrict=0 for dmesg';

async function run(file: string, args: readonly string[]): Promise<{ ok: boolean; stdout: string; why: string }> {
  // Loaded when the log is read (a run that died), not at start-up.
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile(file, [...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) {
        const code = (error as NodeJS.ErrnoException).code;
        resolve({ ok: false, stdout: '', why: code === 'ENOENT' ? `${file} is not installed` : (stderr.trim() || error.message).split('\n')[0] ?? '' });
      } else resolve({ ok: true, stdout, why: '' });
    });
  });
}

/** The wall-clock instant of boot, to the centisecond: dmesg and /dev/kmsg count from it. */
function bootTimeMs(): number | null {
  try {
    const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    return Number.isFinite(uptime) ? Date.now() - uptime * 1000 : null;
  } catch {
    return null;
  }
}

/** Every record in the kernel's ring buffer, without blocking at its end. */
function readKmsg(): { lines: string[] } | { why: string } {
  let fd: number;
  try {
    fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    return { why: `/dev/kmsg: ${(error as NodeJS.ErrnoException).code ?? String(error)}` };
  }
  const lines: string[] = [];
  const buffer = Buffer.alloc(16 * 1024);
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buffer, 0, buffer.length, null);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // EPIPE: the record we were at was overwritten; the next read goes on.
        if (code === 'EPIPE') continue;
        if (code === 'EAGAIN') break;
        return { why: `/dev/kmsg: ${code ?? String(error)}` };
      }
      if (n === 0) break;
      // One record per read; continuation lines (" KEY=value") are dictionary data.
      const record = buffer.toString('utf8', 0, n).split('\n')[0] ?? '';
      lines.push(record);
    }
  } finally {
    closeSync(fd);
  }
  return { lines };
}

/**
 * journalctl -k where it has kernel records, else /dev/kmsg, else dmesg.
 * Never throws: where none can be read, it says so and how to allow it.
 */
export function createKernelLogReader(): KernelLogReader {
  return async (sinceMs: number): Promise<KernelLog> => {
    const problems: string[] = [];
    const since = `@${Math.max(0, Math.floor(sinceMs / 1000) - 60)}`;
    const journal = await run('journalctl', ['-k', '-q', '--no-pager', '-o', 'short-unix', '--since', since]);
    const journalLines = journal.stdout.split('\n').filter((l) => /^\d+\.\d+ /.test(l));
    if (journal.ok && journalLines.length > 0) return { source: 'journalctl -k', lines: journalLines, bootTimeMs: null };
    if (!journal.ok) problems.push(`journalctl -k: ${journal.why}`);
    const kmsg = readKmsg();
    if ('lines' in kmsg) return { source: '/dev/kmsg', lines: kmsg.lines, bootTimeMs: bootTimeMs() };
    problems.push(kmsg.why);
    const dmesg = await run('dmesg', []);
    if (dmesg.ok) return { source: 'dmesg', lines: dmesg.stdout.split('\n'), bootTimeMs: bootTimeMs() };
    problems.push(`dmesg: ${dmesg.why}`);
    return { unavailable: `the kernel log cannot be read (${problems.join('; ')}), so an OOM kill cannot be confirmed: ${HOW_TO_ALLOW}` };
  };
}
