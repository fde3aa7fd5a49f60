/** What killed a run, as far as the evidence says. */
export type CauseKind
  = | 'oom-kill'
    | 'disk-full'
    | 'partial-write'
    | 'rerun-failed'
    | 'killed-by-signal'
    | 'input-missing';

export interface Cause {
  readonly kind: CauseKind;
  /** The writer (or re-run) it is about, when it is about one. */
  readonly pid?: number;
  /** When it happened, ISO-8601, when known. */
  readonly at?: string;
  readonly detail: string;
}
