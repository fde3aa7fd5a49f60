import type { S3Settings } from './s3-connection.js';
import type { FinalTemplate, MarkerTemplate, StagingTemplate } from './template.js';

/** One pipeline's layout and rules, resolved from flags and config. */
export interface PipelineSettings {
  /** The config pipeline's name, when one was picked. */
  readonly pipeline: string | undefined;
  /** Absolute, or `s3://BUCKET/PREFIX` (see normalS3Dir). */
  readonly outDir: string;
  /** Absolute, or `s3://BUCKET/PREFIX` (see normalS3Dir). */
  readonly stagingDir: string;
  readonly final: FinalTemplate;
  readonly staging: StagingTemplate;
  /** null: the pipeline writes no success marker. */
  readonly marker: MarkerTemplate | null;
  readonly freshWithinMs: number;
  readonly staleAfterMs: number;
  /** false: judge writers by file age only (shared storage, other PID namespaces). */
  readonly pidCheck: boolean;
  /** The re-run command's words, `{date}` standing for the run key; undefined when none is known. */
  readonly rerun: readonly string[] | undefined;
  /** From the config: where --fix moves orphans instead of deleting them. */
  readonly quarantine?: string | undefined;
  /** From the config: where --fix and clean append their audit records. */
  readonly auditLog?: string | undefined;
  /** CRASH-LOOP after this many failed attempts (default 3); 0: never. */
  readonly maxAttempts?: number | undefined;
  /** --retry-backoff in ms; 0 or absent: off. */
  readonly retryBackoffMs?: number | undefined;
  /** The job's inputs, absolute, `{date}` standing for the run key: checked before any re-run. */
  readonly inputs?: readonly string[] | undefined;
  /**
   * The config's other pipelines, when a config is in use: a destructive
   * action asks them too, since pipelines may share directories.
   */
  readonly neighbours?: readonly Neighbour[] | undefined;
  /** The config's `s3` block, for s3:// directories. */
  readonly s3?: S3Settings | undefined;
}

/**
 * Another pipeline of the config, as far as its own settings say (a
 * directory or output name it leaves to flags is unknown). Only what is
 * needed to keep its published files and live writers safe.
 */
export interface Neighbour {
  readonly pipeline: string;
  /** Absolute, or undefined when the config leaves it to a flag. */
  readonly outDir: string | undefined;
  readonly stagingDir: string | undefined;
  readonly final: FinalTemplate | undefined;
  readonly staging: StagingTemplate;
  readonly marker: MarkerTemplate | null;
  readonly staleAfterMs: number;
  readonly pidCheck: boolean;
}
