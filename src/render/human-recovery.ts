import type { ChalkInstance } from 'chalk';
import { describeAttempt } from '../core/classify-recovery.js';
import type { Diagnosis } from '../core/diagnosis.js';
import { escapeText, jsonLists } from './format.js';

// Attempts and causes listed one per line before a total: a crash loop left alone can have 100,000.
const SHOWN = 20;

/**
 * The recovery loop's part of the on-call view: why it died, the attempts so
 * far, the inputs. Kernel-log details (a process's name), notes, attempts and
 * input paths come from outside: escaped, none can drive the terminal.
 */
export function renderRecoveryHuman(diagnosis: Diagnosis, chalk: ChalkInstance): string[] {
  const lines: string[] = [];
  const causes = diagnosis.causes ?? [];
  const notes = diagnosis.causeNotes ?? [];
  if (causes.length > 0 || notes.length > 0) {
    lines.push('');
    lines.push(chalk.bold('Why it died'));
    for (const cause of causes.slice(0, SHOWN)) {
      const who = cause.pid === undefined ? '' : ` PID ${cause.pid}`;
      const when = cause.at === undefined ? '' : ` at ${cause.at}`;
      lines.push(`  ${chalk.red(cause.kind)}${who}${escapeText(when)}: ${escapeText(cause.detail)}`);
    }
    const total = causes.length + (diagnosis.unlistedCauses ?? 0);
    if (total > SHOWN) lines.push(`  ... and ${total - SHOWN} more causes (${jsonLists(total)})`);
    for (const note of notes) lines.push(chalk.dim(`  note: ${escapeText(note)}`));
  }
  const attempts = diagnosis.attempts;
  if (attempts && attempts.count > 0) {
    lines.push('');
    const of = attempts.max > 0 ? ` of ${attempts.max} allowed (--max-attempts)` : '';
    lines.push(chalk.bold(`Failed attempts since the last publish or --retry: ${attempts.count}${of}`));
    const causeOf = new Map<number, string>();
    for (const c of causes) if (c.pid !== undefined && !causeOf.has(c.pid)) causeOf.set(c.pid, c.kind);
    for (const attempt of attempts.list.slice(0, SHOWN)) {
      const cause = attempt.pid === null ? undefined : causeOf.get(attempt.pid);
      lines.push(`  ${escapeText(describeAttempt(attempt))}${cause ? `, ${cause}` : ''}`);
    }
    if (attempts.list.length > SHOWN)
      lines.push(`  ... and ${attempts.list.length - SHOWN} more attempts (${jsonLists(attempts.list.length)})`);
  }
  if (attempts?.note) lines.push(chalk.dim(`  note: ${escapeText(attempts.note)}`));
  const inputs = diagnosis.inputs ?? [];
  if (inputs.length > 0) {
    lines.push('');
    lines.push(chalk.bold('Inputs'));
    for (const input of inputs) {
      const mark = input.status === 'ok' ? chalk.green('ok') : chalk.red(input.status);
      lines.push(`  ${mark} ${escapeText(input.path)}: ${escapeText(input.detail)}`);
    }
  }
  lines.push(...renderUploadsHuman(diagnosis, chalk));
  if (diagnosis.retryAfterSeconds) {
    lines.push('');
    lines.push(`${chalk.bold('Backoff:')} the next re-run is allowed in ${diagnosis.retryAfterSeconds}s`);
  }
  return lines;
}

/** S3: multipart uploads never completed (invisible orphans), or why they could not be listed. */
function renderUploadsHuman(diagnosis: Diagnosis, chalk: ChalkInstance): string[] {
  const uploads = diagnosis.uploads ?? [];
  const notes = diagnosis.uploadNotes ?? [];
  if (uploads.length === 0 && notes.length === 0) return [];
  const lines = ['', chalk.bold(`Incomplete multipart uploads: ${uploads.length}`)];
  for (const upload of uploads.slice(0, SHOWN)) {
    const stale = upload.stale ? chalk.red('stale') : chalk.yellow('recent');
    lines.push(`  ${stale} ${escapeText(upload.path)} (started ${escapeText(upload.initiated)})`);
  }
  if (uploads.length > SHOWN) lines.push(`  ... and ${uploads.length - SHOWN} more uploads (${jsonLists(uploads.length)})`);
  for (const note of notes) lines.push(chalk.dim(`  note: ${escapeText(note)}`));
  return lines;
}
