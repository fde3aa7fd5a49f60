import type { State } from './states.js';

/** What each state means for a person: its title, the safe move and the risky one. */
export interface StateAdvice {
  readonly title: string;
  readonly safe: string;
  readonly risky: string;
}

export const ADVICE: Readonly<Record<State, StateAdvice>> = {
  'DONE': {
    title: 'completed and published',
    safe: 'Nothing to do.',
    risky: 'Re-running: it rewrites a correct, published output that downstream may already have read.',
  },
  'A/B/C': {
    title: 'nothing on disk for this run',
    safe: 'Re-run the job, pinned to the same run key.',
    risky: 'None, as long as the re-run gets this run key and not today\'s date: the transform is pure.',
  },
  'D': {
    title: 'died while writing: orphaned staging files',
    safe: 'Delete the orphans, then re-run pinned to the same run key.',
    risky: 'Re-running without cleaning: every retry leaves one more orphan, until the staging disk fills.',
  },
  'D-race': {
    title: 'published, with orphans of an earlier attempt',
    safe: 'Delete the orphans only. Do not re-run.',
    risky: 'Re-running: it would overwrite a correct, freshly published output.',
  },
  'UNPUBLISHED': {
    title: 'output present, success marker missing',
    safe: 'Re-run pinned to the same run key (delete any orphans first); it republishes the same bytes, then the marker.',
    risky:
      'Creating the marker by hand or deleting the output: nobody has checked the file, and downstream would trust it.',
  },
  'RERUN-FAILED': {
    title: 'the re-run crashdiag started failed',
    safe: 'Investigate: read the re-run\'s exit status and last stderr lines below, and why it died, before anything runs it again.',
    risky: 'Running it again as is: a deterministic failure fails again, and each attempt can leave one more orphan.',
  },
  'CRASH-LOOP': {
    title: 'died again and again: a crash loop',
    safe: 'Fix the root cause (see why it died below); then re-run once with --fix --retry.',
    risky: 'Another re-run as is: it dies the same way and leaves one more orphan, until the staging disk fills.',
  },
  'BLOCKED': {
    title: 'a re-run is needed, but an input is missing',
    safe: 'Fix upstream first: get the input delivered, then re-run pinned to the same run key.',
    risky: 'Re-running now: it fails again on the missing input, or publishes from an empty one.',
  },
  'RUNNING': {
    title: 'still running: a writer is alive',
    safe: 'Wait. Touch nothing while the writer lives; diagnose again later.',
    risky: 'Killing the writer, deleting its staging file, or starting a second run beside it.',
  },
  'UNKNOWN': {
    title: 'outside the model: a person must look',
    safe: 'Investigate the findings below by hand; --fix changes nothing in this state.',
    risky: 'Any automatic clean-up or re-run: the disk does not look like anything the tool can vouch for.',
  },
};
