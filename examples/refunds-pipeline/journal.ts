import { type FileHandle, open, readFile } from 'node:fs/promises';

/**
 * The steps the pipeline journals, in order. Each line is appended and
 * fsynced right *after* its step, so a process killed at any moment leaves a
 * journal whose last line is the last step known to be complete; the step in
 * flight is the next one. That is what lets a test bound the disk state a
 * kill could have left (see harness/expected-states.ts).
 */
export const STEPS = [
  'start', // arguments checked, journal open: nothing read yet
  'extracted', // input read and parsed
  'transformed', // output bytes computed in memory
  'staging-created', // <staging>/<key>.<pid>.csv exists, empty
  'staged', // all bytes written, fsynced, closed
  'renamed', // the output is in out/, no marker yet
  'marked', // the success marker exists
  'done', // out/ fsynced: the publication survives a power loss
] as const;

/**
 * The same journal in S3 mode, where there is no rename: the staging object
 * appears whole in one PutObject, is copied to the final key, then deleted.
 */
export const S3_STEPS = [
  'start',
  'extracted',
  'transformed',
  'staged', // PutObject of <staging-prefix><key>.<host>.<pid>.csv answered: the object exists, whole
  'copied', // CopyObject answered: the output exists under its final key, the staging object still does
  'staging-deleted', // DeleteObject of the staging object answered; no marker yet
  'marked', // PutObject of the marker answered
  'done',
] as const;

export type Step = (typeof STEPS)[number] | (typeof S3_STEPS)[number];
const KNOWN_STEPS: ReadonlySet<string> = new Set([...STEPS, ...S3_STEPS]);

export interface JournalEntry {
  step: Step;
  pid: number;
  at: string;
  [detail: string]: unknown;
}

export interface Journal {
  record(step: Step, details?: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

export async function openJournal(
  path: string,
  pid: number,
  now: () => Date = () => new Date(),
): Promise<Journal> {
  const handle: FileHandle = await open(path, 'a');
  return {
    async record(step, details = {}) {
      const entry: JournalEntry = { step, pid, at: now().toISOString(), ...details };
      // One write(2) per line: a kill lands before or after it, and the
      // reader tolerates the torn last line a power loss could still leave.
      await handle.write(`${JSON.stringify(entry)}\n`);
      await handle.sync();
    },
    close: () => handle.close(),
  };
}

export const NO_JOURNAL: Journal = { record: async () => {}, close: async () => {} };

/** The complete entries of a journal file; a missing file means the process never started. */
export async function readJournal(path: string): Promise<JournalEntry[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const entries: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.endsWith('}')) continue;
    try {
      const entry = JSON.parse(line) as JournalEntry;
      if (KNOWN_STEPS.has(entry.step)) entries.push(entry);
    } catch {
      // a torn line is a step that did not complete
    }
  }
  return entries;
}

/** The last completed step, or null when the process died before journaling anything. */
export function lastStep(entries: readonly JournalEntry[]): Step | null {
  return entries.at(-1)?.step ?? null;
}
