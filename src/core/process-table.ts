import { readdirSync, readFileSync } from 'node:fs';
import { constants, hostname } from 'node:os';
import { errnoCode } from './errors.js';

/** What the process table says about one PID, on this host. */
export interface ProcessFacts {
  readonly exists: boolean;
  /** Exited but not yet reaped: it can no longer write anything. */
  readonly zombie?: boolean;
  /** When the process started (epoch ms), where the platform tells. */
  readonly startMs?: number;
  /**
   * Its command line, words joined by spaces, where the platform tells: a
   * person tells the job from a stray `sleep` that happens to hold the PID.
   */
  readonly command?: string;
}

/** The process-liveness probe; passed into the core so tests can fake it. */
export interface ProcessTable {
  readonly hostname: string;
  inspect(pid: number): ProcessFacts;
}

// USER_HZ: the unit of /proc/<pid>/stat start times. The kernel exports 100 to
// user space on every mainstream architecture, whatever its internal HZ.
const CLOCK_TICKS_PER_SECOND = 100;

function readBootTimeMs(): number | undefined {
  try {
    const stat = readFileSync('/proc/stat', 'utf8');
    const match = /^btime (\d+)$/m.exec(stat);
    return match?.[1] ? Number(match[1]) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** /proc/<pid>/cmdline: NUL-separated words; empty for kernel threads and zombies. */
function readCommandLine(pid: number): string | undefined {
  try {
    const words = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((w) => w !== '');
    return words.length > 0 ? words.join(' ') : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a process whose thread-group leader reads as a zombie still has
 * other threads: a main thread that called pthread_exit leaves the leader Z
 * in /proc/<pid>/stat while a worker thread keeps writing the file. A real
 * zombie has no thread but the leader. When the tasks cannot be listed, the
 * process is taken to live on: only certainty makes a writer dead.
 */
function threadsLiveOn(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).some((task) => task !== String(pid));
  } catch (error) {
    return errnoCode(error) !== 'ENOENT';
  }
}

/**
 * Signal 0 without the exception: the binding process.kill wraps, which
 * returns a negated errno instead of throwing. process.kill builds an
 * ErrnoException (message, stack) for every dead PID: 85 % of asking about
 * one, 0.6 s for a crash loop's 100,000 orphans (measured). Undocumented, so
 * it is only trusted to say "no such process" (exactly -ESRCH): anything else
 * (0, EPERM, a Node where it is gone or returns something else) goes through
 * process.kill as before.
 */
type RawKill = (pid: number, signal: number) => unknown;
const rawKill: RawKill | undefined = (() => {
  const candidate = (process as unknown as { _kill?: unknown })._kill;
  return typeof candidate === 'function' ? (candidate.bind(process) as RawKill) : undefined;
})();
const NO_SUCH_PROCESS = -constants.errno.ESRCH;

/** The real process table: signal 0 for existence, /proc for state and start time. */
export function createProcessTable(): ProcessTable {
  let bootTimeMs: number | undefined | null = null;

  const readProc = (pid: number): Omit<ProcessFacts, 'exists'> => {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return {};
    }
    // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const startTicks = Number(fields[19]);
    if (bootTimeMs === null) bootTimeMs = readBootTimeMs();
    const zombie = (state === 'Z' || state === 'X') && !threadsLiveOn(pid);
    const command = readCommandLine(pid);
    const described = command === undefined ? { zombie } : { zombie, command };
    if (bootTimeMs === undefined || !Number.isFinite(startTicks)) return described;
    return { ...described, startMs: bootTimeMs + (startTicks * 1000) / CLOCK_TICKS_PER_SECOND };
  };

  return {
    hostname: hostname(),
    inspect(pid) {
      // Never signal 0 or a negative number: those address process groups.
      if (!Number.isSafeInteger(pid) || pid <= 0) return { exists: false };
      // Same syscall, same answer (threads, zombies and PID namespaces alike): only cheaper when dead.
      // (An int32 only: the binding would wrap a larger one to another PID.)
      if (pid === (pid | 0) && rawKill?.(pid, 0) === NO_SUCH_PROCESS) return { exists: false };
      try {
        process.kill(pid, 0);
      } catch (error) {
        const code = errnoCode(error);
        if (code === 'ESRCH') return { exists: false };
        // EPERM: the process exists but belongs to someone else.
        if (code !== 'EPERM') throw error;
      }
      return { exists: true, ...readProc(pid) };
    },
  };
}

/**
 * Asks about each PID once, for the length of one scan or clean: a directory
 * of orphans from one crash loop names the same few PIDs thousands of times.
 * Never used where a file is re-checked right before its removal.
 */
export function memoizedProcessTable(table: ProcessTable): ProcessTable {
  const known = new Map<number, ProcessFacts>();
  return {
    hostname: table.hostname,
    inspect(pid) {
      let facts = known.get(pid);
      if (!facts) {
        facts = table.inspect(pid);
        known.set(pid, facts);
      }
      return facts;
    },
  };
}
