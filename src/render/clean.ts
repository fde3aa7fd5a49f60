import type { CleanReport } from '../core/clean.js';
import { formatDuration } from '../core/duration.js';
import { EXIT_CODES, SCHEMA_VERSION } from '../core/states.js';
import { escapeText, formatBytes, plural } from './format.js';

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
    if (report.dryRun) for (const file of report.removed) lines.push(`  would remove ${escapeText(file.path)}`);
    const special = report.kept.filter((k) => k.reason !== 'younger than the threshold');
    for (const k of special) lines.push(`  kept ${escapeText(k.path)}: ${escapeText(k.reason)}`);
    const young = report.kept.length - special.length;
    if (young > 0) lines.push(`  kept ${plural(young, 'file')} younger than the threshold`);
    for (const f of report.failed) lines.push(`  NOT removed ${escapeText(f.path)}: ${escapeText(f.reason)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A dry run removed nothing: its list is `wouldRemove`, so a script cannot read it as done. */
function jsonReport(report: CleanReport): Record<string, unknown> {
  if (!report.dryRun) return { ...report };
  const { removed, ...rest } = report;
  const entries: Array<[string, unknown]> = Object.entries(rest);
  const at = entries.findIndex(([key]) => key === 'olderThanSeconds') + 1;
  entries.splice(at, 0, ['wouldRemove', removed]);
  return Object.fromEntries(entries);
}

export function renderCleanJson(reports: readonly CleanReport[]): string {
  return `${JSON.stringify({ schemaVersion: SCHEMA_VERSION, pipelines: reports.map(jsonReport) }, null, 2)}\n`;
}

/**
 * clean --json when another janitor held the lock: a script parsing stdout
 * still gets one object, what stopped it, with the exit code.
 */
export function renderCleanLockTimeoutJson(message: string, hint: string): string {
  const body = { schemaVersion: SCHEMA_VERSION, exitCode: EXIT_CODES.RUNNING, error: { code: 'lock-timeout', message, hint } };
  return `${JSON.stringify(body, null, 2)}\n`;
}
