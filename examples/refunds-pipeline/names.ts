// File names of the settlement job, as templates in the form crashdiag takes
// (--final, --staging), and resolved for one run.

export const FINAL_TEMPLATE = 'refunds_settled_{date}.csv';
export const STAGING_TEMPLATE = '{date}.{pid}.csv';
/**
 * In S3 mode the staging key also names the writer's host: a PID means
 * nothing off the host that wrote it, so without {host} crashdiag can only
 * judge a staging object by its age (young: maybe still being written). With
 * it, on the writer's host, a dead PID is a dead writer, as locally.
 */
export const S3_STAGING_TEMPLATE = '{date}.{host}.{pid}.csv';
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

export function s3StagingName(date: string, host: string, pid: number): string {
  return S3_STAGING_TEMPLATE.replace('{date}', date).replace('{host}', host).replace('{pid}', String(pid));
}

/** What crashdiag takes for a {host}: a host name, FQDNs included. */
export const HOST_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$/;

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Whether a staging directory entry (or staging object name) belongs to this run key (any writer, any host). */
export function isStagingNameFor(name: string, date: string): boolean {
  return new RegExp(`^${escaped(date)}\\.(?:[A-Za-z0-9_.-]+\\.)?\\d+\\.csv$`).test(name);
}
