import type { SpaceFacts } from '../core/causes.js';
import type { CommandRunner } from '../core/fix.js';
import type { FileSystem } from '../core/fs.js';
import type { Identity } from '../core/permission.js';
import type { LockRuntime } from '../core/lock.js';
import type { KernelLogReader } from '../core/kernel-log.js';
import type { ProcessTable } from '../core/process-table.js';

/** An output stream: what the renderers write to. */
export interface OutputStream {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
  /** The terminal's width, when the stream is one. */
  readonly columns?: number;
}

/** The runbooks the package ships: read through here, so the CLI itself opens no file of its own. */
export interface RunbookFiles {
  /** Where a runbook (`runbooks/D.md`) is installed: JSON names the file itself, readable from any directory. */
  readonly pathOf: (relative: string) => string;
  read(relative: string): Promise<string>;
}

/**
 * Everything the CLI touches in the outside world. The bin passes the real
 * process; tests pass their own, so no test needs to spawn for logic.
 */
export interface CliIo extends LockRuntime {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly fs: FileSystem;
  readonly processes: ProcessTable;
  /** The real clock; --now replaces it for reading, never for --fix or clean. */
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /**
   * Runs a re-run command without a shell. `stdoutToStderr` keeps a child's
   * output out of a --json stream.
   */
  readonly runCommand: (
    argv: readonly string[],
    env: Readonly<Record<string, string>>,
    stdoutToStderr: boolean,
  ) => ReturnType<CommandRunner>;
  /** Who is acting, for the audit log. */
  readonly user: string;
  /** Who is acting, for permissions: which removals the kernel will allow. */
  readonly identity: Identity;
  /** Why it died: the kernel log (OOM kills) and free space. Absent, those causes are not looked for. */
  readonly readKernelLog?: KernelLogReader;
  readonly statfs?: (path: string) => Promise<SpaceFacts>;
  readonly runbooks: RunbookFiles;
  /** Where the machine-wide config is looked for; /etc/crashdiag when not set. */
  readonly systemConfigDir?: string;
}

/**
 * The width to fit help and tables to: the terminal's, else $COLUMNS; undefined
 * when neither says (output piped to a file keeps its full paths).
 */
export function terminalWidth(io: Pick<CliIo, 'stdout' | 'env'>): number | undefined {
  if (io.stdout.isTTY && io.stdout.columns !== undefined && io.stdout.columns > 0) return io.stdout.columns;
  const columns = Number(io.env.COLUMNS);
  return Number.isSafeInteger(columns) && columns > 0 ? columns : undefined;
}
