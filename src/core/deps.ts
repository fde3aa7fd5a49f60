import type { SpaceFacts } from './causes.js';
import type { CommandRunner } from './fix.js';
import type { FileSystem } from './fs.js';
import type { KernelLogReader } from './kernel-log.js';
import type { Identity } from './permission.js';
import type { ProcessTable } from './process-table.js';

/**
 * Everything the core reaches outside itself for, in one place: the file
 * system, the process table, the clocks, timers, randomness, this process's
 * PID and the command runner. The CLI fills it from the real process and
 * tests with their own; each part of the core takes only what it uses
 * (`Pick<Deps, ...>`), so its signature says which side effects it can have.
 *
 * Two times, never confused: `wallClock` is this host's real clock, read
 * when something happens (lock waits, audit records, and every age a removal
 * is judged by); `nowMs` is not a clock but the one moment a reading is
 * judged at, which --now may set for diagnose and scan, and never for
 * anything that removes (a removal judges at `wallClock()`, read right then).
 */
export interface Deps {
  readonly fs: FileSystem;
  readonly processes: ProcessTable;
  /** This host's real clock (epoch ms). Never --now: a fake clock would make a fresh file look dead. */
  readonly wallClock: () => number;
  /** The judged now (epoch ms): every age of a reading is measured against it; --now, or the wall clock at start. */
  readonly nowMs: number;
  readonly sleep: (ms: number) => Promise<void>;
  /** This process's PID, written into a lock so others can ask whether its holder lives. */
  readonly pid: number;
  /** A fresh random hex token: tells a lock apart from a successor that reuses its inode. */
  readonly randomToken: () => string;
  /** Calls `fn` every `ms` until the returned function is called; must not keep the process alive. */
  readonly every: (ms: number, fn: () => void) => () => void;
  /** Runs a re-run without a shell; the core never spawns by itself. */
  readonly runCommand: CommandRunner;
  /** Who is acting, for the audit log. */
  readonly user: string;
  /** Who removes: every removal must be permitted to them before the first one happens. */
  readonly identity: Identity;
  /** Progress lines for a person, as each step happens. */
  readonly progress: (line: string) => void;
  /** Why it died: the kernel log (OOM kills). Absent, it is not consulted, and a note says so. */
  readonly readKernelLog?: KernelLogReader;
  /** Free space of a file system, for the disk-full cause. */
  readonly statfs?: (path: string) => Promise<SpaceFacts>;
}
