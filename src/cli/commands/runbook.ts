import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../core/errors.js';
import { FIELD_GUIDE, RUNBOOKS, STATES, type State } from '../../core/states.js';
import type { CliIo } from '../io.js';

// Loose spellings people type at 06:08: "abc", "d_race", "running".
const ALIASES: Readonly<Record<string, State | 'field-guide'>> = {
  'ABC': 'A/B/C',
  'A': 'A/B/C',
  'B': 'A/B/C',
  'C': 'A/B/C',
  'DRACE': 'D-race',
  'FIELD-GUIDE': 'field-guide',
  'FIELDGUIDE': 'field-guide',
  'RERUNFAILED': 'RERUN-FAILED',
  'CRASHLOOP': 'CRASH-LOOP',
};

export function runbookFor(name: string): string {
  const upper = name.toUpperCase();
  const state
    = STATES.find((s) => s.toUpperCase() === upper) ?? ALIASES[upper.replace(/[_\s/]/g, '')] ?? ALIASES[upper];
  if (!state) {
    throw new UsageError(
      `There is no runbook for ${JSON.stringify(name)}.`,
      `Name one of: ${STATES.join(', ')}, field-guide.`,
    );
  }
  return state === 'field-guide' ? FIELD_GUIDE : RUNBOOKS[state];
}

/** The package root, where runbooks/ ships: two levels up from src/cli/commands or one from dist/. */
async function readRunbook(relative: string): Promise<string> {
  const candidates = ['../../../', '../../', '../'].map((up) =>
    fileURLToPath(new URL(up + relative, import.meta.url)),
  );
  for (const path of candidates) {
    try {
      return await readFile(path, 'utf8');
    } catch {
      // try the next layout
    }
  }
  throw new Error(`runbook ${relative} is missing from the installation`);
}

export async function runbookCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const relative = runbookFor(String(argv.state ?? ''));
  io.stdout.write(await readRunbook(relative));
  return 0;
}
