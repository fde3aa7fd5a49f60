import type { CommandSpec } from './command-specs.js';

/**
 * Edit distance with adjacent transpositions counted as one edit (optimal
 * string alignment): "scna" is one slip from "scan", not two.
 */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const above = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((above[j] as number) + 1, (row[j - 1] as number) + 1, (above[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row.push(best);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/** The candidates nearest to `word` within `limit` edits, nearest first. */
function nearest(word: string, candidates: readonly string[], limit: number): string[] {
  return candidates
    .map((c) => ({ c, d: editDistance(word, c) }))
    .filter(({ d }) => d <= limit)
    .sort((x, y) => x.d - y.d || x.c.localeCompare(y.c))
    .map(({ c }) => c);
}

// Words people type when they want to look, not to change anything. Answering
// "check" with "clean" would turn a question into a deletion.
const QUESTION_WORDS = new Set([
  'check', 'status', 'stat', 'state', 'inspect', 'show', 'info', 'look', 'examine', 'what', 'why',
  'query', 'verify', 'test', 'describe', 'explain', 'analyse', 'analyze', 'view', 'health', 'doctor',
  'report', 'get',
]);
const LIST_WORDS = new Set(['list', 'ls', 'all', 'overview', 'summary', 'runs', 'dashboard', 'metrics']);
const LOG_WORDS = new Set(['log', 'logs', 'audit', 'journal', 'actions']);
const FIX_WORDS = new Set(['fix', 'repair', 'recover', 'rerun', 're-run', 'retry', 'resume']);
const REMOVE_WORDS = new Set(['rm', 'remove', 'delete', 'purge', 'prune', 'gc', 'cleanup', 'janitor']);

/**
 * A hint for a word that is not a command: a command it is a prefix of or a
 * slip away from, or the command for what the word asks. A command that
 * modifies files is only offered for a word that is close to its own name or
 * asks to remove something, never for a question.
 */
export function suggestCommand(word: string, commands: readonly CommandSpec[]): string | undefined {
  const lower = word.toLowerCase();
  const name = (n: string) => commands.find((c) => c.name === n)?.name;
  if (QUESTION_WORDS.has(lower) && name('diagnose')) {
    return 'To look at one run: crashdiag diagnose <run-key>; at every run: crashdiag scan. Neither changes anything.';
  }
  if (LIST_WORDS.has(lower) && name('scan')) return 'Did you mean crashdiag scan (every run, worst first)?';
  if (LOG_WORDS.has(lower) && name('history')) return 'Did you mean crashdiag history (what --fix and clean did)?';
  if (FIX_WORDS.has(lower) && name('diagnose'))
    return 'To recover one run: crashdiag diagnose <run-key> (add --fix --dry-run to see the plan first).';
  if (REMOVE_WORDS.has(lower) && name('clean'))
    return 'Did you mean crashdiag clean? It deletes dead-writer orphans: try --dry-run first.';
  if (lower === 'help') return 'See crashdiag --help.';
  if (lower === 'version') return 'See crashdiag --version.';
  const safe = commands.filter((c) => !c.modifiesFiles).map((c) => c.name);
  const all = commands.map((c) => c.name);
  // A prefix is taken only when it names one command.
  const prefixed = all.filter((c) => c.startsWith(lower));
  if (lower.length > 0 && prefixed.length === 1) return `Did you mean crashdiag ${prefixed[0]}?`;
  if (prefixed.length > 1) {
    const readOnly = prefixed.filter((c) => safe.includes(c));
    return `Did you mean ${(readOnly.length > 0 ? readOnly : prefixed).map((c) => `crashdiag ${c}`).join(' or ')}?`;
  }
  const limit = Math.max(1, Math.min(2, Math.floor(lower.length / 3)));
  const [close] = nearest(lower, all, limit);
  return close === undefined ? undefined : `Did you mean crashdiag ${close}?`;
}

/** The closest flag to an unknown one, with its dashes: "--pipline" gives "--pipeline". */
export function suggestFlag(name: string, flags: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  const prefixed = flags.filter((f) => f.startsWith(lower));
  if (lower.length >= 3 && prefixed.length === 1) return `--${prefixed[0]}`;
  const limit = Math.max(1, Math.min(3, Math.floor(lower.length / 3)));
  const [close] = nearest(lower, flags, limit);
  return close === undefined ? undefined : `--${close}`;
}
