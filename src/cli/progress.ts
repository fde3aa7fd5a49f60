import type { OutputStream } from './io.js';

/** A run shorter than this shows no progress: most finish before anyone wonders. */
export const PROGRESS_AFTER_MS = 2000;
// Redrawn at most this often: a line per 256 entries would flood a slow terminal.
const REDRAW_MS = 250;

export interface ProgressLine {
  /** Entries looked at so far. */
  readonly update: (entriesSeen: number) => void;
  /** Clears the line, if one was shown. */
  readonly done: () => void;
}

/**
 * "scan: 412,000 entries looked at, 96,000/s" on stderr, once a run has
 * taken over two seconds, and only on a terminal: a pipe or a log file gets
 * nothing. The clock is passed in, so a test moves it instead of sleeping.
 */
export function progressLine(
  io: { readonly stderr: OutputStream; readonly now: () => number },
  verb: string,
): ProgressLine {
  if (io.stderr.isTTY !== true) return { update: () => {}, done: () => {} };
  const started = io.now();
  let drawnAt: number | undefined;
  return {
    update(entriesSeen) {
      const now = io.now();
      const elapsed = now - started;
      if (elapsed < PROGRESS_AFTER_MS || (drawnAt !== undefined && now - drawnAt < REDRAW_MS)) return;
      drawnAt = now;
      const rate = Math.round((entriesSeen * 1000) / elapsed);
      io.stderr.write(`\r\x1b[K${verb}: ${entriesSeen.toLocaleString('en-US')} entries looked at, ${rate.toLocaleString('en-US')}/s`);
    },
    done() {
      if (drawnAt !== undefined) io.stderr.write('\r\x1b[K');
      drawnAt = undefined;
    },
  };
}
