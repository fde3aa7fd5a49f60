import type { ChalkInstance } from 'chalk';
import { shellJoin } from '../core/command-words.js';
import type { FixReport } from '../core/fix.js';
import { escapeText, formatBytes, plural } from './format.js';
import { stateColour } from './human-diagnosis.js';

const RESULT_WORDS = {
  'deleted': 'deleted',
  'quarantined': 'quarantined',
  'aborted': 'aborted (multipart upload)',
  'already-gone': 'already gone (another fixer got there first)',
  'left-alone': 'left alone',
  'planned': 'would remove',
  'failed': 'could not remove',
  'not-attempted': 'not attempted',
} as const;

/** What --fix found, planned and did; the diagnosis after it follows. */
export function renderFixHuman(report: FixReport, chalk: ChalkInstance): string {
  const { before, plan } = report;
  const lines: string[] = [''];
  const heading = report.dryRun ? 'Fix plan (dry run: nothing is changed)' : 'Fix';
  lines.push(
    `${chalk.bold(heading)}: found ${stateColour(chalk, before.state)(` ${before.state} `)} (action ${before.action})`,
  );
  if (before.action === 'none') lines.push('  nothing to do');
  if (before.action === 'wait') lines.push('  a writer is alive: nothing is touched');
  if (before.action === 'investigate')
    lines.push('  outside the model: nothing is touched; a person must look');
  if (before.state === 'CRASH-LOOP') lines.push('  a crash loop: orphans are removed, nothing is re-run');
  if (before.state === 'BLOCKED') lines.push('  an input is missing: orphans are removed, nothing is re-run');
  if (before.retryAfterSeconds) lines.push(`  backing off: nothing is touched for another ${before.retryAfterSeconds}s`);
  for (const refusal of report.refused) {
    lines.push(`  ${chalk.red('refused')} ${escapeText(refusal.path)}: ${escapeText(refusal.reason)}`);
  }
  if (report.refused.length > 0) {
    lines.push(chalk.red(report.dryRun ? '  nothing would be removed, nor re-run' : '  nothing was removed'));
  }
  for (const step of report.steps) {
    const where = step.to ? ` -> ${escapeText(step.to)}` : '';
    const why = step.reason ? `: ${escapeText(step.reason)}` : '';
    lines.push(
      `  ${RESULT_WORDS[step.result]} ${escapeText(step.path)} (${formatBytes(step.bytes)}, writer PID ${step.pid})${where}${why}`,
    );
  }
  if (report.stopped) lines.push(chalk.red(`  stopped: ${report.stopped}`));
  const freed = report.steps.filter((s) => s.result === 'deleted' || s.result === 'quarantined');
  if (freed.length > 0) {
    lines.push(
      `  ${plural(freed.length, 'file')}, ${formatBytes(freed.reduce((n, s) => n + s.bytes, 0))} removed from staging`,
    );
  }
  if (report.rerun) {
    const command = escapeText(shellJoin(report.rerun.argv));
    const result = report.rerun.result;
    if (!result) lines.push(`  would re-run: ${chalk.cyan(command)}`);
    else if (result.error) lines.push(chalk.red(`  re-run could not start: ${command}: ${escapeText(result.error)}`));
    else if (result.exitStatus === 0) lines.push(`  re-ran: ${chalk.cyan(command)} (exit 0)`);
    else {
      const how = result.signal ? `killed by ${result.signal}` : `exit ${result.exitStatus}`;
      lines.push(chalk.red(`  re-run failed: ${command} (${how}); not retried`));
      const tail = result.stderrTail ?? [];
      if (tail.length > 0) {
        lines.push(chalk.dim(`  the last ${tail.length} line(s) it wrote to stderr:`));
        for (const line of tail) lines.push(`    | ${line}`);
      }
    }
  } else if (report.rerunSkipped) {
    lines.push(chalk.yellow(`  not re-run: ${report.rerunSkipped}`));
  } else if (plan.rerunMissing) {
    lines.push(
      `  a re-run is needed but no command is known: pass --rerun 'CMD ... {date}' or set "rerun" in the pipeline's config`,
    );
  }
  return `${lines.join('\n')}\n`;
}
