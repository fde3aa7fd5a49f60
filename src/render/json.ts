import type { Diagnosis } from '../core/diagnosis.js';

export const SCHEMA_VERSION = 1;

/** The --json form of a diagnosis: one object, stable field order, sorted paths. */
export function renderDiagnosisJson(diagnosis: Diagnosis, extra: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ schemaVersion: SCHEMA_VERSION, ...diagnosis, ...extra }, null, 2)}\n`;
}
