import { rerunArgv } from './command-words.js';
import type { Diagnosis } from './diagnosis.js';
import type { State } from './states.js';

/** One staging file the fix will remove (delete, or move to quarantine). */
export interface PlannedRemoval {
  readonly path: string;
  readonly bytes: number;
  readonly pid: number;
  readonly writerReason: string;
}

/** What --fix will do for one diagnosis, decided before anything is touched. */
export interface FixPlan {
  readonly run: string;
  readonly state: State;
  readonly removals: readonly PlannedRemoval[];
  /** Move orphans here instead of deleting them. */
  readonly quarantineDir: string | undefined;
  /** The re-run's argv, the run key in place; null when the state needs none. */
  readonly rerun: readonly string[] | null;
  /** The state needs a re-run but no command is known. */
  readonly rerunMissing: boolean;
}

/**
 * The safe action for a state, as a list of concrete steps. Pure. RUNNING and
 * UNKNOWN plan nothing; D-race, CRASH-LOOP and BLOCKED never re-run; only dead
 * writers' files are removed.
 */
export function planFix(
  diagnosis: Diagnosis,
  rerunWords: readonly string[] | undefined,
  quarantineDir: string | undefined,
): FixPlan {
  // A crash loop and a blocked run still lose their orphans (recorded, so the
  // attempts stay counted), but are never re-run.
  const cleans = ['clean-then-rerun', 'clean-only', 'fix-root-cause', 'fix-upstream'].includes(diagnosis.action);
  const reruns = diagnosis.action === 'rerun' || diagnosis.action === 'clean-then-rerun';
  const removals = cleans
    ? diagnosis.orphans
        .filter((o) => o.writer === 'dead')
        .map((o) => ({ path: o.path, bytes: o.bytes, pid: o.pid, writerReason: o.writerReason }))
    : [];
  return {
    run: diagnosis.run,
    state: diagnosis.state,
    removals,
    quarantineDir: removals.length > 0 ? quarantineDir : undefined,
    rerun: reruns && rerunWords ? rerunArgv(rerunWords, diagnosis.run) : null,
    rerunMissing: reruns && !rerunWords,
  };
}

/**
 * Whether the disk, looked at again right before the re-run, still calls for
 * it: undefined if so, else why not. The removals take time, and the state
 * they should leave is known in advance (A/B/C, or UNPUBLISHED when that is
 * what was found); anything else means someone acted meanwhile: an output
 * published by another run (a re-run would overwrite it), a writer started
 * (a re-run would be a second copy beside it), a new orphan, an unmarked
 * output replaced (`outputReplaced`: its identity changed). Pure.
 */
export function rerunStillNeeded(plan: FixPlan, now: Diagnosis, outputReplaced = false): string | undefined {
  const expected: State = plan.state === 'UNPUBLISHED' ? 'UNPUBLISHED' : 'A/B/C';
  const found = `the run is ${now.state} now`;
  // Still UNPUBLISHED, but not the output that was found: another run renamed
  // its own into place (its marker may be next), and a re-run would overwrite it.
  if (now.state === expected && now.action === 'rerun' && outputReplaced && expected === 'UNPUBLISHED') {
    return `${found}, but its output was replaced or rewritten meanwhile (another run publishing?), and a re-run would overwrite it`;
  }
  if (now.state === expected && now.action === 'rerun') return undefined;
  switch (now.state) {
    case 'DONE':
      return `${found}: its output and marker were published meanwhile, and a re-run would overwrite them`;
    case 'RUNNING':
      return `${found}: a writer started meanwhile, and a re-run would be a second copy beside it`;
    case 'UNPUBLISHED':
      if (expected === 'A/B/C') {
        return `${found}: an output appeared meanwhile without its marker (another run publishing?), and a re-run would overwrite it`;
      }
      return `${found}, with staging files again: something wrote meanwhile`;
    default:
      return `${found}, not ${expected} as the removals should have left it: something else acted meanwhile`;
  }
}
