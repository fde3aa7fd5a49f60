// File names of the settlement job, as templates in the form crashdiag takes
// (--final, --staging), and resolved for one run.

export const FINAL_TEMPLATE = 'refunds_settled_{date}.csv';
export const STAGING_TEMPLATE = '{date}.{pid}.csv';
export const MARKER_SUFFIX = '.success';

export function finalName(date: string): string {
  return FINAL_TEMPLATE.replace('{date}', date);
}

export function markerName(date: string): string {
  return `${finalName(date)}${MARKER_SUFFIX}`;
}

export function stagingName(date: string, pid: number): string {
  return STAGING_TEMPLATE.replace('{date}', date).replace('{pid}', String(pid));
}

/** Whether a staging directory entry belongs to this run key (any writer). */
export function isStagingNameFor(name: string, date: string): boolean {
  return new RegExp(`^${date.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.\\d+\\.csv$`).test(name);
}
