import type { ChalkInstance } from 'chalk';
import Table from 'cli-table3';
import { formatDuration } from '../core/duration.js';
import type { ScanResult } from '../core/scan.js';
import { formatBytes, plural, tableOptions } from './format.js';
import { stateColour } from './human-diagnosis.js';
import { scanRows } from './scan-rows.js';

const age = (seconds: number | null) => (seconds === null ? '-' : formatDuration(seconds * 1000));

export function renderScanHuman(results: readonly ScanResult[], chalk: ChalkInstance): string {
  const rows = scanRows(results);
  if (rows.length === 0) return 'No runs in the window, and no staging files.\n';
  const table = new Table({
    head: ['pipeline', 'run', 'state', 'action', 'output age', 'orphans', 'orphan bytes', 'oldest orphan'],
    ...tableOptions(chalk),
  });
  for (const row of rows) {
    table.push([
      row.pipeline ?? '-',
      row.run,
      stateColour(chalk, row.state)(` ${row.state} `),
      row.action,
      age(row.outputAgeSeconds),
      String(row.orphanCount),
      row.orphanCount === 0 ? '-' : formatBytes(row.orphanBytes),
      age(row.oldestOrphanAgeSeconds),
    ]);
  }
  const counts = new Map<string, number>();
  for (const row of rows) counts.set(row.state, (counts.get(row.state) ?? 0) + 1);
  const tally = [...counts].map(([state, n]) => `${n} ${state}`).join(', ');
  return `${table.toString()}\n${plural(rows.length, 'run')}: ${tally}\n`;
}
