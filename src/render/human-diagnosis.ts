import type { ChalkInstance } from 'chalk';
import { ADVICE } from '../core/advice.js';
import { rerunArgv, shellJoin } from '../core/command-words.js';
import type { Diagnosis, StagingFileReport } from '../core/diagnosis.js';
import { formatDuration } from '../core/duration.js';
import type { State } from '../core/states.js';
import { basename, dirname } from 'node:path';
import { escapeText, formatBytes, JSON_LISTED, jsonLists, plural } from './format.js';
import { type Cell, fitTable, shortenMiddle, wrapIndented } from './fit.js';
import { renderRecoveryHuman } from './human-recovery.js';

export interface DiagnosisView {
  /** The terminal's width; undefined when unknown (nothing is cut). */
  readonly width?: number;
  /** This host's name: a staging file named after another host was judged by its age. */
  readonly localHost?: string;
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

// The flags `crashdiag runbook` takes to fill in the user's names.
const RUNBOOK_FLAGS = new Set(['--config', '--pipeline', '--out-dir', '--staging-dir', '--final', '--staging', '--marker']);

/** `crashdiag runbook D --pipeline refunds`: works from any directory, with the user's names filled in. */
export function runbookCommand(state: State, invocation: readonly string[]): string {
  const words = ['crashdiag', 'runbook', state];
  const flags = invocation.slice(3);
  for (let i = 0; i < flags.length; i++) {
    const word = flags[i] as string;
    if (word === '--no-marker') words.push(word);
    else if (RUNBOOK_FLAGS.has(word) && flags[i + 1] !== undefined) words.push(word, flags[++i] as string);
  }
  return shellJoin(words);
}

function ageText(seconds: number | null): string {
  return seconds === null ? '-' : formatDuration(seconds * 1000);
}

/** Files shown one per row (and findings one per line) before a total says how many more. */
export const SHOWN_FILES = 20;

/**
 * The removal of the orphans to paste, while it fits on a screen; past that
 * --fix, which re-checks each file, is the way. An object in S3 is removed
 * with the AWS CLI, one object per command: rm cannot take a URL.
 */
function removeByHand(dead: readonly string[], deadCount: number): string[] {
  // Counted from the totals: the files listed may be the first of many more.
  if (deadCount > SHOWN_FILES || deadCount > dead.length) {
    const listed = deadCount <= JSON_LISTED ? 'every path' : `the first ${JSON_LISTED} paths`;
    return [`# ${deadCount} orphans: too many to paste; --fix removes them one by one, --json lists ${listed}`];
  }
  const local = dead.filter((path) => !path.startsWith('s3://'));
  const objects = dead.filter((path) => path.startsWith('s3://'));
  return [
    ...(local.length > 0 ? [shellJoin(['rm', '--', ...local])] : []),
    ...objects.map((url) => shellJoin(['aws', 's3', 'rm', url])),
  ];
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
      return [shellJoin(fixWithRerun), 'or by hand:', ...removeByHand(dead, diagnosis.orphanTotals.dead), rerun];
    case 'clean-only':
      return [shellJoin(fix), 'or by hand:', ...removeByHand(dead, diagnosis.orphanTotals.dead)];
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
      return [`see the findings below and ${runbookCommand(diagnosis.state, view.invocation)}`];
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
  const where = view.pipeline ? `pipeline ${escapeText(view.pipeline)}, ` : '';
  lines.push('');
  lines.push(
    `${stateColour(chalk, diagnosis.state)(`  ${diagnosis.state}  `)}  ${chalk.bold(advice.title)}  ${chalk.dim(`(${where}run ${diagnosis.run}, exit ${diagnosis.exitCode})`)}`,
  );
  lines.push('');
  lines.push(wrapIndented(escapeText(diagnosis.summary), view.width, ''));
  lines.push('');
  lines.push(`${chalk.green.bold('Safe action:')} ${advice.safe}`);
  for (const command of actionCommands(view)) {
    lines.push(command.endsWith(':') ? chalk.dim(`  ${command}`) : `    ${chalk.cyan(escapeText(command))}`);
  }
  lines.push(`${chalk.red.bold('Risky:')} ${advice.risky}`);
  lines.push('');

  lines.push(chalk.bold('Evidence'));
  lines.push(...evidenceLines(view, chalk));
  lines.push(...renderRecoveryHuman(diagnosis, chalk));
  lines.push('');
  lines.push(`runbook: ${escapeText(runbookCommand(diagnosis.state, view.invocation))}`);
  return `${lines.join('\n')}\n`;
}

/** What the writer column says: the PID's verdict, or, judged by age, that it is a presumption and why. */
function writerCell(file: StagingFileReport, view: DiagnosisView, chalk: ChalkInstance): Cell {
  const paint = file.writer === 'alive' ? chalk.blue : file.writer === 'dead' ? chalk.red : chalk.magenta;
  if (file.writerJudgedBy === 'pid') return { text: `PID ${file.pid} ${file.writer}`, style: paint };
  const age = formatDuration(Math.abs(file.ageSeconds) * 1000);
  const when = file.ageSeconds < 0 ? `modified ${age} in the future` : `modified ${age} ago`;
  const otherHost = file.host !== null && file.host !== view.localHost;
  const why = otherHost ? 'written on another host' : 'judged by age, not by PID';
  const verdict = file.writer === 'unknown' ? 'cannot be judged' : `presumed ${file.writer}`;
  return { text: `${verdict} (${when}, ${why})`, style: paint };
}

/**
 * The evidence: each directory once, then its files by name, sized to the
 * terminal; each staging file's reason and, for a live process, its command
 * line, so a stray `sleep` holding a reused PID is not taken for the job.
 */
/** The directories the evidence is in, one line each, and how a path is shown under them. */
function directoriesOf(view: DiagnosisView): { lines: string[]; name: (path: string) => string } {
  const { diagnosis } = view;
  const outDir = dirname(diagnosis.final.path);
  const stagingDirs = [
    ...new Set([...diagnosis.orphans, ...diagnosis.anomalies].map((o) => dirname(o.path))),
  ].filter((dir) => dir !== outDir);
  const dirWidth = view.width === undefined ? Number.POSITIVE_INFINITY : view.width - 16;
  const dirLine = (label: string, dir: string) => `  ${label.padEnd(12)} ${shortenMiddle(escapeText(dir), dirWidth)}`;
  const shared = stagingDirs.length === 0 && diagnosis.orphanTotals.count > 0;
  const lines = [dirLine(shared ? 'directory:' : 'output dir:', outDir)];
  for (const dir of stagingDirs) lines.push(dirLine('staging dir:', dir));
  // A name is shown alone where its directory is printed above it; every name
  // comes from the disk, so it is escaped: none can drive the terminal.
  const printed = new Set([outDir, ...stagingDirs]);
  return { lines, name: (path) => escapeText(printed.has(dirname(path)) ? basename(path) : path) };
}

/** The table's rows: the output, its marker, the first staging files and a total of the rest. */
function evidenceRows(view: DiagnosisView, chalk: ChalkInstance, name: (path: string) => string): Cell[][] {
  const { diagnosis } = view;
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
  const rows: Cell[][] = [
    ['output', name(final.path), final.bytes === null ? '-' : formatBytes(final.bytes), ageText(final.ageSeconds), finalNote],
  ];
  if (final.marker) {
    const markerNote = !final.marker.exists ? 'missing' : odd.has(final.marker.path) ? 'see findings' : 'present';
    rows.push(['marker', name(final.marker.path), '', ageText(final.marker.ageSeconds ?? null), markerNote]);
  }
  // The first files, then a total: a key with 100,000 orphans is not a 100,000-row table.
  for (const file of diagnosis.orphans.slice(0, SHOWN_FILES)) {
    rows.push(['staging', name(file.path), formatBytes(file.bytes), ageText(file.ageSeconds), writerCell(file, view, chalk)]);
  }
  // The rest from the totals: past the shown rows, the list may hold only the first of them.
  const totals = diagnosis.orphanTotals;
  const shown = diagnosis.orphans.slice(0, SHOWN_FILES);
  const unshown = totals.count - shown.length;
  if (unshown > 0) {
    const count = (writer: 'dead' | 'alive' | 'unknown') => totals[writer] - shown.filter((o) => o.writer === writer).length;
    rows.push([
      'staging',
      `... and ${unshown} more (${count('dead')} dead, ${count('alive')} alive, ${count('unknown')} unknown; ${jsonLists(totals.count)})`,
      formatBytes(totals.bytes - shown.reduce((n, o) => n + o.bytes, 0)),
      '',
      '',
    ]);
  }
  return rows;
}

/** Under the table: why each shown writer was judged so, a total, and the findings. */
function evidenceNotes(view: DiagnosisView, chalk: ChalkInstance, name: (path: string) => string): string[] {
  const { diagnosis } = view;
  const lines: string[] = [];
  for (const file of diagnosis.orphans.slice(0, SHOWN_FILES)) {
    lines.push(chalk.dim(wrapIndented(`${name(file.path)}: ${escapeText(file.writerReason)}`, view.width, '  ', '    ')));
    if (file.writerCommand !== undefined)
      lines.push(chalk.dim(wrapIndented(`command: ${escapeText(file.writerCommand)}`, view.width, '    ', '      ')));
  }
  const totals = diagnosis.orphanTotals;
  if (totals.count > 1) {
    lines.push(
      chalk.dim(
        `  ${plural(totals.count, 'staging file')}, ${totals.dead} with a dead writer, ${formatBytes(totals.bytes)} in all`,
      ),
    );
  }
  if (diagnosis.anomalies.length > 0) {
    lines.push('');
    lines.push(chalk.magenta.bold('Findings'));
    for (const anomaly of diagnosis.anomalies.slice(0, SHOWN_FILES))
      lines.push(wrapIndented(`${name(anomaly.path)}: ${escapeText(anomaly.reason)}`, view.width, '  ', '    '));
    const total = diagnosis.anomalies.length + (diagnosis.unlistedAnomalies ?? 0);
    if (total > SHOWN_FILES) lines.push(`  ... and ${total - SHOWN_FILES} more findings (${jsonLists(total)})`);
  }
  return lines;
}

function evidenceLines(view: DiagnosisView, chalk: ChalkInstance): string[] {
  const { lines, name } = directoriesOf(view);
  const columns = [
    { head: '' },
    { head: 'file', shrink: 'middle', min: 16 },
    { head: 'size' },
    { head: 'age' },
    { head: 'writer', shrink: 'wrap', min: 14 },
  ] as const;
  lines.push(fitTable(columns, evidenceRows(view, chalk, name), chalk, view.width));
  return [...lines, ...evidenceNotes(view, chalk, name)];
}
