import type { ChalkInstance } from 'chalk';
import { describeAttempt } from '../core/classify-recovery.js';
import type { Diagnosis } from '../core/diagnosis.js';

/** The recovery loop's part of the on-call view: why it died, the attempts so far, the inputs. */
export function renderRecoveryHuman(diagnosis: Diagnosis, chalk: ChalkInstance): string[] {
  const lines: string[] = [];
  const causes = diagnosis.causes ?? [];
  const notes = diagnosis.causeNotes ?? [];
  if (causes.length > 0 || notes.length > 0) {
    lines.push('');
    lines.push(chalk.bold('Why it died'));
    for (const cause of causes) {
      const who = cause.pid === undefined ? '' : ` PID ${cause.pid}`;
      const when = cause.at === undefined ? '' : ` at ${cause.at}`;
      lines.push(`  ${chalk.red(cause.kind)}${who}${when}: ${cause.detail}`);
    }
    for (const note of notes) lines.push(chalk.dim(`  note: ${note}`));
  }
  const attempts = diagnosis.attempts;
  if (attempts && attempts.count > 0) {
    lines.push('');
    const of = attempts.max > 0 ? ` of ${attempts.max} allowed (--max-attempts)` : '';
    lines.push(chalk.bold(`Failed attempts since the last publish or --retry: ${attempts.count}${of}`));
    for (const attempt of attempts.list) {
      const cause = causes.find((c) => attempt.pid !== null && c.pid === attempt.pid);
      lines.push(`  ${describeAttempt(attempt)}${cause ? `, ${cause.kind}` : ''}`);
    }
  }
  if (attempts?.note) lines.push(chalk.dim(`  note: ${attempts.note}`));
  const inputs = diagnosis.inputs ?? [];
  if (inputs.length > 0) {
    lines.push('');
    lines.push(chalk.bold('Inputs'));
    for (const input of inputs) {
      const mark = input.status === 'ok' ? chalk.green('ok') : chalk.red(input.status);
      lines.push(`  ${mark} ${input.path}: ${input.detail}`);
    }
  }
  if (diagnosis.retryAfterSeconds) {
    lines.push('');
    lines.push(`${chalk.bold('Backoff:')} the next re-run is allowed in ${diagnosis.retryAfterSeconds}s`);
  }
  return lines;
}
