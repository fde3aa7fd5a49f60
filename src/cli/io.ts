import type { Deps } from '../core/deps.js';
import type { CommandRunner } from '../core/fix.js';

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
export interface CliIo
  extends Pick<Deps, 'fs' | 'processes' | 'sleep' | 'user' | 'identity' | 'pid' | 'randomToken' | 'every'>,
  Pick<Deps, 'readKernelLog' | 'statfs'> {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** The wall clock (Deps.wallClock); --now replaces it for reading, never for --fix or clean. */
  readonly now: () => number;
  /**
   * Runs a re-run command without a shell. `stdoutToStderr` keeps a child's
   * output out of a --json stream.
   */
  readonly runCommand: (
    argv: readonly string[],
    env: Readonly<Record<string, string>>,
    stdoutToStderr: boolean,
  ) => ReturnType<CommandRunner>;
  readonly runbooks: RunbookFiles;
  /**
   * Loads the S3 part (the AWS SDK inside), only when a directory is an
   * s3:// URL; the bin silences the SDK's Node-version notice first. Absent,
   * the CLI imports it itself (tests).
   */
  readonly loadS3?: () => Promise<typeof import('../core/s3-run.js')>;
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
