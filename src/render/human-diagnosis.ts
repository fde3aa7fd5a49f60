import type { ChalkInstance } from 'chalk';
import Table from 'cli-table3';
import { ADVICE } from '../core/advice.js';
import { rerunArgv, shellJoin } from '../core/command-words.js';
import type { Diagnosis } from '../core/diagnosis.js';
import { formatDuration } from '../core/duration.js';
import type { State } from '../core/states.js';
import { escapeText, formatBytes, tableOptions } from './format.js';
import { renderRecoveryHuman } from './human-recovery.js';

export interface DiagnosisView {
  readonly diagnosis: Diagnosis;
  /** The pipeline's name, when it came from the config. */
  readonly pipeline: string | undefined;
  /** The re-run command's words with `{date}`, when known. */
  readonly rerun: readonly string[] | undefined;
  /** `crashdiag diagnose KEY ...` as the user can type it again. */
  readonly invocation: readonly string[];
}

export function stateColour(chalk: ChalkInstance, state: State): ChalkInstance {
  switch (state) {
    case 'DONE':
      return chalk.bgGreen.black.bold;
    case 'A/B/C':
    case 'UNPUBLISHED':
      return chalk.bgYellow.black.bold;
    case 'D':
    case 'D-race':
    case 'RERUN-FAILED':
    case 'CRASH-LOOP':
      return chalk.bgRed.white.bold;
    case 'BLOCKED':
      return chalk.bgYellow.black.bold;
    case 'RUNNING':
      return chalk.bgBlue.white.bold;
    case 'UNKNOWN':
      return chalk.bgMagenta.white.bold;
  }
}

function ageText(seconds: number | null): string {
  return seconds === null ? '-' : formatDuration(seconds * 1000);
}

/** Files shown one per row (and findings one per line) before a total says how many more. */
export const SHOWN_FILES = 20;

/** An rm of the orphans to paste, while it fits on a screen; past that --fix, which re-checks each file, is the way. */
function removeByHand(dead: readonly string[]): string {
  if (dead.length <= SHOWN_FILES) return shellJoin(['rm', '--', ...dead]);
  return `# ${dead.length} orphans: too many to paste; --fix removes them one by one, --json lists every path`;
}

function actionCommands(view: DiagnosisView): string[] {
  const { diagnosis } = view;
  const dead = diagnosis.orphans.filter((o) => o.writer === 'dead').map((o) => o.path);
  const rerun = view.rerun
    ? shellJoin(rerunArgv(view.rerun, diagnosis.run))
    : `<the job's own command, with run key ${diagnosis.run}>`;
  const fix = [...view.invocation, '--fix'];
  const fixWithRerun = view.rerun ? fix : [...fix, '--rerun', '<command with {date}>'];
  switch (diagnosis.action) {
    case 'none':
      return [];
    case 'rerun':
      return [shellJoin(fixWithRerun), 'or by hand:', rerun];
    case 'clean-then-rerun':
      return [shellJoin(fixWithRerun), 'or by hand:', removeByHand(dead), rerun];
    case 'clean-only':
      return [shellJoin(fix), 'or by hand:', removeByHand(dead)];
    case 'wait': {
      const alive = diagnosis.orphans.filter((o) => o.writer === 'alive');
      // A PID only means something on the host that judged it; age-judged files are watched instead.
      const pids = [...new Set(alive.filter((o) => o.writerJudgedBy === 'pid').map((o) => String(o.pid)))];
      const watched = alive.filter((o) => o.writerJudgedBy === 'age').map((o) => o.path);
      return [
        ...(pids.length > 0 ? [`ps -o pid,lstart,etime,args -p ${pids.join(',')}`] : []),
        ...(watched.length > 0 ? [shellJoin(['ls', '-l', '--time-style=full-iso', '--', ...watched])] : []),
        `then again: ${shellJoin(view.invocation)}`,
      ];
    }
    case 'investigate':
      return [`see the findings below and ${diagnosis.runbook}`];
    case 'fix-root-cause':
      return [
        shellJoin(fix),
        'deletes the orphans (recorded), re-runs nothing; once the cause is fixed:',
        shellJoin([...fixWithRerun, '--retry']),
      ];
    case 'fix-upstream':
      return [
        ...(diagnosis.inputs ?? []).filter((i) => i.status !== 'ok').map((i) => shellJoin(['ls', '-l', '--', i.path])),
        `then again: ${shellJoin(view.invocation)}`,
      ];
  }
}

/** The on-call view: the state, what to type, what not to do, and the evidence. */
export function renderDiagnosisHuman(view: DiagnosisView, chalk: ChalkInstance): string {
  const { diagnosis } = view;
  const advice = ADVICE[diagnosis.state];
  const lines: string[] = [];
  // Everything printed that came from disk, a flag or the config goes
  // through escapeText: a name holding ESC or U+202E cannot drive the terminal.
  const where = view.pipeline ? `pipeline ${escapeText(view.pipeline)}, ` : '';
  lines.push('');
  lines.push(
    `${stateColour(chalk, diagnosis.state)(`  ${diagnosis.state}  `)}  ${chalk.bold(advice.title)}  ${chalk.dim(`(${where}run ${escapeText(diagnosis.run)}, exit ${diagnosis.exitCode})`)}`,
  );
  lines.push('');
  lines.push(escapeText(diagnosis.summary));
  lines.push('');
  lines.push(`${chalk.green.bold('Safe action:')} ${advice.safe}`);
  for (const command of actionCommands(view)) {
    lines.push(command.endsWith(':') ? chalk.dim(`  ${command}`) : `    ${chalk.cyan(escapeText(command))}`);
  }
  lines.push(`${chalk.red.bold('Risky:')} ${advice.risky}`);
  lines.push('');

  const table = new Table({
    head: ['', 'path', 'size', 'age', 'writer'],
    ...tableOptions(chalk),
    wordWrap: true,
  });
  const { final } = diagnosis;
  // A keyed output that is a directory or a symlink is not "an earlier run":
  // the findings below say what it is.
  const odd = new Set(diagnosis.anomalies.map((a) => a.path));
  const finalNote = !final.exists
    ? 'missing'
    : odd.has(final.path)
      ? 'see findings'
      : final.belongsToRun
        ? 'this run'
        : 'an earlier run';
  table.push([
    'output',
    escapeText(final.path),
    final.bytes === null ? '-' : formatBytes(final.bytes),
    ageText(final.ageSeconds),
    finalNote,
  ]);
  if (final.marker) {
    const markerNote = !final.marker.exists
      ? 'missing'
      : odd.has(final.marker.path)
        ? 'see findings'
        : 'present';
    table.push(['marker', escapeText(final.marker.path), '', '', markerNote]);
  }
  // The first files, then a total: a key with 100,000 orphans is not a 100,000-row table (--json lists every one).
  const shown = diagnosis.orphans.slice(0, SHOWN_FILES);
  const unshown = diagnosis.orphans.slice(SHOWN_FILES);
  for (const file of shown) {
    const verdict
      = file.writer === 'alive'
        ? chalk.blue('alive')
        : file.writer === 'dead'
          ? chalk.red('dead')
          : chalk.magenta('unknown');
    const who = file.host ? `PID ${file.pid}@${escapeText(file.host)}` : `PID ${file.pid}`;
    table.push([
      'staging',
      escapeText(file.path),
      formatBytes(file.bytes),
      ageText(file.ageSeconds),
      `${who} ${verdict}`,
    ]);
  }
  if (unshown.length > 0) {
    const count = (writer: string) => unshown.filter((o) => o.writer === writer).length;
    table.push([
      'staging',
      `... and ${unshown.length} more (${count('dead')} dead, ${count('alive')} alive, ${count('unknown')} unknown; --json lists every one)`,
      formatBytes(unshown.reduce((n, o) => n + o.bytes, 0)),
      '',
      '',
    ]);
  }
  lines.push(chalk.bold('Evidence'));
  lines.push(table.toString());
  for (const file of shown) {
    lines.push(chalk.dim(`  ${escapeText(file.path)}: ${escapeText(file.writerReason)}`));
  }
  if (diagnosis.anomalies.length > 0) {
    lines.push('');
    lines.push(chalk.magenta.bold('Findings'));
    for (const anomaly of diagnosis.anomalies.slice(0, SHOWN_FILES))
      lines.push(`  ${escapeText(anomaly.path)}: ${escapeText(anomaly.reason)}`);
    const more = diagnosis.anomalies.length - SHOWN_FILES;
    if (more > 0) lines.push(`  ... and ${more} more findings (--json lists every one)`);
  }
  lines.push(...renderRecoveryHuman(diagnosis, chalk));
  lines.push('');
  lines.push(`runbook: ${diagnosis.runbook}`);
  return `${lines.join('\n')}\n`;
}
