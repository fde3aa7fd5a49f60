import type { FileSystem } from '../core/fs.js';
import type { ProcessTable } from '../core/process-table.js';

/** An output stream: what the renderers write to. */
export interface OutputStream {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
}

/**
 * Everything the CLI touches in the outside world. The bin passes the real
 * process; tests pass their own, so no test needs to spawn for logic.
 */
export interface CliIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly fs: FileSystem;
  readonly processes: ProcessTable;
  /** The real clock; --now replaces it. */
  readonly now: () => number;
}
