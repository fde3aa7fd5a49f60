import type { CleanedFile, CleanReport } from '../core/clean.js';
import type { PipelineSettings } from '../core/settings.js';
import { formatDuration } from '../core/duration.js';
import { SCHEMA_VERSION } from '../core/states.js';

/** Where the stream writes: stdout, as the renderers see it. */
interface Out {
  write(chunk: string): unknown;
}
import { escapeText, formatBytes, type JsonError, plural, renderErrorJson } from './format.js';

/** What clean did (or, under --dry-run, would do), pipeline by pipeline, for a person. */
export function renderCleanHuman(reports: readonly CleanReport[]): string {
  const lines: string[] = [];
  for (const report of reports) {
    const verb = report.dryRun ? 'would free' : 'freed';
    // Names and reasons come from disk and the config: escaped, they cannot drive the terminal.
    const name = escapeText(report.pipeline ? `pipeline ${report.pipeline}` : report.stagingDir);
    lines.push(
      `${name}: ${verb} ${plural(report.files, 'file')}, ${formatBytes(report.bytes)} (orphans older than ${formatDuration(report.olderThanSeconds * 1000)})`,
    );
    for (const run of report.perRun)
      lines.push(`  ${escapeText(run.run)}: ${plural(run.files, 'file')}, ${formatBytes(run.bytes)}`);
    const special = report.kept.filter((k) => k.reason !== 'younger than the threshold');
    for (const k of special) lines.push(`  kept ${escapeText(k.path)}: ${escapeText(k.reason)}`);
    if (report.keptYounger > 0) lines.push(`  kept ${plural(report.keptYounger, 'file')} younger than the threshold`);
    const unlisted = report.keptCount - report.keptYounger - special.length;
    if (unlisted > 0) lines.push(`  kept ${plural(unlisted, 'more file')} for other reasons (not listed)`);
    for (const f of report.failed) lines.push(`  NOT removed ${escapeText(f.path)}: ${escapeText(f.reason)}`);
    const more = report.failedCount - report.failed.length;
    if (more > 0) lines.push(`  NOT removed ${plural(more, 'more file')}: each is in the audit log (crashdiag history)`);
  }
  return `${lines.join('\n')}\n`;
}

/** A dry run's line for one orphan it would remove, written as it is met: the list is never held. */
export function renderWouldRemove(file: CleanedFile): string {
  return `  would remove ${escapeText(file.path)}\n`;
}

/**
 * `{"schemaVersion": 1, "pipelines": [...]}` written while the janitor works:
 * each pipeline's `removed` list is streamed, the rest of its report follows.
 */
export class CleanJsonStream {
  readonly #out: Out;
  #opened = false;
  #pending = '';
  #pipelines = 0;
  #closed = false;
  #failure: { exitCode: number; error: JsonError } | undefined;
  /** Files written in the open pipeline's `removed`; undefined when none is open. */
  #files: number | undefined;

  constructor(out: Out) {
    this.#out = out;
  }

  removed(settings: PipelineSettings, dryRun: boolean, olderThanMs: number, file: CleanedFile): void {
    const files = this.#files ?? this.#begin({
      pipeline: settings.pipeline ?? null,
      stagingDir: settings.stagingDir,
      dryRun,
      olderThanSeconds: Math.round(olderThanMs / 1000),
    });
    // JSON.stringify's text for these four fields (integers and a string), made without an object walk per file.
    const text = `{"path":${JSON.stringify(file.path)},"bytes":${file.bytes},"pid":${file.pid},"ageSeconds":${file.ageSeconds}}`;
    this.#pending += `${files > 0 ? ',' : ''}\n        ${text}`;
    this.#files = files + 1;
    // Written in chunks: a write per file was a fifth of the janitor's time.
    if (this.#pending.length >= 65_536) this.#flush();
  }

  #flush(): void {
    if (this.#pending !== '') this.#out.write(this.#pending);
    this.#pending = '';
  }

  finish(report: CleanReport): void {
    const { pipeline, stagingDir, dryRun, olderThanSeconds, removed: _removed, ...rest } = report;
    const files = this.#files ?? this.#begin({ pipeline, stagingDir, dryRun, olderThanSeconds });
    const tail = Object.entries(rest).map(([key, value]) => `      ${JSON.stringify(key)}: ${JSON.stringify(value)}`);
    this.#flush();
    this.#out.write(`${files > 0 ? '\n      ' : ''}],\n${tail.join(',\n')}\n    }`);
    this.#files = undefined;
  }

  /** Opens a pipeline's object, up to its `removed` list. */
  #begin(head: Pick<CleanReport, 'pipeline' | 'stagingDir' | 'dryRun' | 'olderThanSeconds'>): number {
    this.#open();
    const fields = Object.entries(head).map(([key, value]) => `      ${JSON.stringify(key)}: ${JSON.stringify(value)}`);
    // A dry run removed nothing: its list says what would go.
    const list = head.dryRun ? 'wouldRemove' : 'removed';
    this.#out.write(`${this.#pipelines++ > 0 ? ',\n' : ''}    {\n${fields.join(',\n')},\n      "${list}": [`);
    this.#files = 0;
    return 0;
  }

  /** What stopped the janitor, with the exit code: one object, written once the stream closes. */
  fail(exitCode: number, error: JsonError): void {
    this.#failure = { exitCode, error };
  }

  /** Whether any of the document is written: an error must then go inside it, never as a second document after it. */
  get opened(): boolean {
    return this.#opened;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#flush();
    if (!this.#opened && this.#failure) {
      this.#out.write(renderErrorJson(this.#failure.exitCode, this.#failure.error));
      return;
    }
    // Nothing written and nothing to say: the caller's error document is the one stdout gets.
    if (!this.#opened) return;
    this.#open();
    // A pipeline cut off midway (an unexpected error) still closes: its removals so far are listed.
    if (this.#files !== undefined) this.#out.write('\n      ]}');
    const failure = this.#failure
      ? `,\n  "exitCode": ${this.#failure.exitCode},\n  "error": ${JSON.stringify(this.#failure.error)}`
      : '';
    this.#out.write(`\n  ]${failure}\n}\n`);
  }

  #open(): void {
    if (this.#opened) return;
    this.#opened = true;
    this.#out.write(`{\n  "schemaVersion": ${SCHEMA_VERSION},\n  "pipelines": [\n`);
  }
}
