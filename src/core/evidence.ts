import type { ProcessFacts } from './process-table.js';
import type { RecoveryEvidence } from './recovery.js';

/** What a directory entry is, by lstat: a symlink is never followed. */
export type EntryKind = 'file' | 'directory' | 'symlink' | 'other';

/** One path's facts, as lstat saw them. */
export interface PathFacts {
  readonly path: string;
  readonly status: 'missing' | 'present' | 'unreadable';
  readonly kind?: EntryKind;
  readonly bytes?: number;
  readonly mtimeMs?: number;
  /**
   * The inode's last change. No user can set it back (any utime, write,
   * rename or link moves it to now), so it says "last changed" honestly
   * where the mtime may have been set into the past (cp -p, curl -R).
   */
  readonly ctimeMs?: number;
  /**
   * When the file was created, where the file system says (statx): what
   * bounds its writer's death from below for the causes, kept from this one
   * look so they need not lstat every orphan again.
   */
  readonly birthtimeMs?: number;
  /**
   * Set when the times say only when it was started, not when it was last
   * written (an S3 object made by a multipart upload): why. Its last change
   * may be as late as now.
   */
  readonly lastChangeUnknown?: string;
  /** Why it could not be read (status 'unreadable'). */
  readonly error?: string;
}

/** Whether and how the PID in a staging name could be asked about. */
export type PidCheck
  = | { readonly checked: false; readonly why: string }
    | { readonly checked: true; readonly facts: ProcessFacts };

/** A directory entry whose name matches the staging template for the run key. */
export interface StagingEntry extends PathFacts {
  readonly name: string;
  readonly pid: number;
  readonly host: string | undefined;
  readonly pidCheck: PidCheck;
  /** Set when the name is also a published output's or marker's (staging and output share a directory). */
  readonly alsoPublishedAs?: string;
  /**
   * The other config pipeline whose output or marker the name is, when it is
   * not this one's; alone, without alsoPublishedAs, when that pipeline's
   * output names are not in the config, so the name may be one.
   */
  readonly alsoPublishedBy?: string;
  /** Set when another pipeline staging such names in this directory waits longer before calling a file stale. */
  readonly staleAfterMs?: number;
}

/** The rules that turn facts into a judgement. */
export interface JudgementRules {
  /** A fixed-name output younger than this belongs to the current run. */
  readonly freshWithinMs: number;
  /** Without a PID verdict, a file untouched this long has no live writer. */
  readonly staleAfterMs: number;
}

/** Everything the disk and the process table said about one run key. */
export interface RunEvidence {
  readonly runKey: string;
  readonly nowMs: number;
  readonly rules: JudgementRules;
  /** The output's name carries the run key: any age of it belongs to this run. */
  readonly finalKeyed: boolean;
  readonly final: PathFacts;
  /** null when the pipeline writes no marker (--no-marker). */
  readonly marker: PathFacts | null;
  /** Sorted by path. */
  readonly staging: readonly StagingEntry[];
  /** Earlier attempts, inputs and a just-failed re-run: absent, the disk alone decides. */
  readonly recovery?: RecoveryEvidence;
}
