import { basename, dirname } from 'node:path';
import type { ChalkInstance } from 'chalk';
import type { AuditRecord } from '../core/audit.js';
import { shellJoin } from '../core/command-words.js';
import { fitTable } from './fit.js';
import { escapeText, formatBytes } from './format.js';
import { formatLocalTime } from './time.js';

export interface HistoryView {
  readonly chalk: ChalkInstance;
  /** An IANA zone for the times; undefined is the machine's own. */
  readonly timeZone: string | undefined;
  /** The terminal's width; undefined keeps every cell whole. */
  readonly width: number | undefined;
}

function detail(record: AuditRecord): string {
  if (record.op === 'rerun') {
    const how = record.signal ? `killed by ${record.signal}` : `exit ${record.exitStatus ?? '?'}`;
    return `${shellJoin(record.command ?? [])} (${record.reason ? `could not start: ${record.reason}` : how})`;
  }
  const parts = [record.path ?? ''];
  if (record.op === 'intent') parts.push(`(about to ${record.intent ?? 'remove'}; no outcome recorded: stopped or killed midway?)`);
  if (record.to) parts.push(`-> ${record.to}`);
  if (record.reason) parts.push(`(${record.reason})`);
  return parts.join(' ');
}

/** The audit log as a table: what was done, by whom, when. `records` is not empty. */
export function renderHistoryHuman(auditLog: string, records: readonly AuditRecord[], view: HistoryView): string {
  const { chalk } = view;
  // Each directory once: the paths of one pipeline's log nearly always share one.
  const dirs = new Set(records.flatMap((r) => (r.path === undefined ? [] : [dirname(r.path)])));
  const [onlyDir] = dirs;
  // Every field is the audit log's text, which anyone who can write the file
  // controls: escaped, a record cannot drive the terminal.
  const lines = [`audit log: ${escapeText(auditLog)}`];
  if (dirs.size === 1 && onlyDir !== undefined) lines.push(`directory: ${escapeText(onlyDir)}`);
  const shown = (record: AuditRecord) =>
    dirs.size === 1 && record.path !== undefined ? { ...record, path: basename(record.path) } : record;
  const cell = (value: string | number | null | undefined) => (value === undefined || value === null ? '' : escapeText(String(value)));
  const rows = records.map((r) => [
    // A time that is not one (a hand-edited or planted line) is shown as written, escaped.
    Number.isNaN(Date.parse(r.time)) ? cell(r.time) : formatLocalTime(Date.parse(r.time), view.timeZone),
    cell(`${r.user}@${r.host}`),
    cell(r.run),
    ['refuse', 'skip', 'fail', 'intent'].includes(r.op) ? { text: cell(r.op), style: chalk.red } : cell(r.op),
    cell(detail(shown(r))),
    typeof r.bytes === 'number' ? formatBytes(r.bytes) : cell(r.bytes),
    cell(r.writerPid),
  ]);
  const table = fitTable(
    [
      { head: 'time' },
      { head: 'who', shrink: 'middle', dropOrder: 1 },
      { head: 'run' },
      { head: 'action' },
      { head: 'what', shrink: 'wrap', min: 12 },
      { head: 'size' },
      { head: 'writer', dropOrder: 2 },
    ],
    rows,
    chalk,
    view.width,
  );
  return `${lines.join('\n')}\n${table}\n`;
}
