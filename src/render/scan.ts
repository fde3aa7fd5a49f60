import type { ChalkInstance } from 'chalk';
import { formatDuration } from '../core/duration.js';
import type { ScanResult } from '../core/scan.js';
import { type Cell, fitTable, wrapIndented } from './fit.js';
import { escapeText, formatBytes, plural } from './format.js';
import { stateColour } from './human-diagnosis.js';
import { pipelineLabel, type ScanFailureRow, scanRows } from './scan-rows.js';

const age = (seconds: number | null) => (seconds === null ? '-' : formatDuration(seconds * 1000));

/** The scan table, worst first, sized to the terminal; a pipeline that could not be scanned is a row of its own. */
export function renderScanHuman(
  results: readonly ScanResult[],
  chalk: ChalkInstance,
  failures: readonly ScanFailureRow[] = [],
  width?: number,
): string {
  const rows = scanRows(results);
  if (rows.length === 0 && failures.length === 0) return 'No runs in the window, and no staging files.\n';
  const cells: Cell[][] = failures.map((f) => [
    f.pipeline,
    '-',
    { text: 'NOT SCANNED', style: chalk.bgMagenta.white.bold },
    'see below',
    '-',
    '-',
    '-',
    '-',
  ]);
  for (const row of rows) {
    cells.push([
      escapeText(row.pipeline),
      escapeText(row.run),
      { text: chalk.level > 0 ? ` ${row.state} ` : row.state, style: stateColour(chalk, row.state) },
      row.action,
      age(row.outputAgeSeconds),
      String(row.orphanCount),
      row.orphanCount === 0 ? '-' : formatBytes(row.orphanBytes),
      age(row.oldestOrphanAgeSeconds),
    ]);
  }
  const table = fitTable(
    [
      { head: 'pipeline', shrink: 'middle', min: 8 },
      { head: 'run' },
      { head: 'state' },
      { head: 'action', dropOrder: 1 },
      { head: 'output age', shrink: 'wrap', min: 6 },
      { head: 'orphans', shrink: 'wrap', min: 4 },
      { head: 'orphan bytes', shrink: 'wrap', min: 6 },
      { head: 'oldest orphan', shrink: 'wrap', min: 6, dropOrder: 2 },
    ],
    cells,
    chalk,
    width,
  );
  const counts = new Map<string, number>();
  for (const row of rows) counts.set(row.state, (counts.get(row.state) ?? 0) + 1);
  const tally = [...counts].map(([state, n]) => `${n} ${state}`).join(', ');
  const lines = [table, `${plural(rows.length, 'run')}${tally ? `: ${tally}` : ''}`];
  for (const result of results) {
    for (const note of result.notes ?? [])
      lines.push(wrapIndented(`note (${escapeText(pipelineLabel(result.pipeline))}): ${escapeText(note)}`, width, '', '  '));
  }
  for (const f of failures) {
    lines.push(chalk.magenta(wrapIndented(`pipeline ${f.pipeline} was not scanned: ${f.message}`, width, '', '  ')));
    if (f.hint) lines.push(wrapIndented(f.hint, width, '  '));
  }
  return `${lines.join('\n')}\n`;
}
