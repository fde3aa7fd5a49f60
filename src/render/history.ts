import type { AuditRecord } from '../core/audit.js';
import { SCHEMA_VERSION } from '../core/states.js';
import { escapeText } from './format.js';

/** history --json: the records as the audit log holds them (times as recorded, UTC). */
export function renderHistoryJson(auditLog: string, records: readonly AuditRecord[]): string {
  return `${JSON.stringify({ schemaVersion: SCHEMA_VERSION, auditLog, records }, null, 2)}\n`;
}

/** An empty history, without loading the table renderer. */
export function renderNoHistory(auditLog: string): string {
  return `No actions recorded in ${escapeText(auditLog)}.\n`;
}
