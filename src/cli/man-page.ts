import { CLEAN_EXIT_HELP, COMMANDS, EXIT_CODE_HELP, type OptionSpec, SCAN_EXIT_HELP, VERSION } from './command-specs.js';
import { CONFIG_SEARCH_DESCRIPTION } from './pipeline-options.js';

/** Text for roff: a backslash is doubled, and a line must not start with a dot or a quote. */
function roff(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n');
}

function option(o: OptionSpec): string {
  const value = o.type === 'boolean' ? '' : ` \\fI${o.type === 'number' ? 'N' : o.name.toUpperCase().replace(/-/g, '_')}\\fR`;
  const negated = o.type === 'boolean' && o.defaultDescription === 'true' ? `, \\fB\\-\\-no\\-${roff(o.name)}\\fR` : '';
  const fallback = o.defaultDescription ?? (o.default !== undefined ? String(o.default) : undefined);
  const byDefault = fallback && o.type !== 'boolean' ? ` Default: ${roff(fallback)}.` : '';
  return `.TP\n\\fB\\-\\-${roff(o.name)}\\fR${value}${negated}\n${roff(o.describe)}.${byDefault}`;
}

/**
 * crashdiag(1), from the same command table as --help and the parsers, so
 * the three never disagree. Built into dist/crashdiag.1 by scripts/build.mjs.
 */
// Commands whose exit codes have their own paragraph under EXIT STATUS.
const EXIT_STATUS_OF = new Set(['diagnose', 'scan', 'clean']);

export function renderManPage(date: string): string {
  const lines = [
    `.TH CRASHDIAG 1 "${date}" "crashdiag ${VERSION}" "User Commands"`,
    '.SH NAME',
    'crashdiag \\- name the state a crashed staging\\-rename batch run left on disk, and recover it safely',
    '.SH SYNOPSIS',
    ...COMMANDS.map((c) => {
      const positional = c.positional
        ? c.positional.optional
          ? ` [\\fI${roff(c.positional.name)}\\fR]`
          : ` \\fI${roff(c.positional.name)}\\fR`
        : '';
      return `.B crashdiag ${c.name}\n${[positional.trim(), '[\\fIoptions\\fR]'].filter(Boolean).join(' ')}\n.br`;
    }),
    '.SH DESCRIPTION',
    roff(
      'crashdiag reads a batch job\'s output and staging directories, names the state the crash left behind (DONE, A/B/C, D, D-race, UNPUBLISHED, RUNNING, UNKNOWN), shows the evidence, and prints, or with --fix performs, the one safe recovery action. It never deletes a published output or marker, never touches a file whose writer is alive, and never follows a symlink.',
    ),
    '.SH COMMANDS',
  ];
  for (const c of COMMANDS) {
    lines.push(`.SS ${c.name}`, roff(`${c.describe}.`));
    if (c.positional) lines.push(`.TP\n\\fI${roff(c.positional.name)}\\fR\n${roff(c.positional.describe)}.`);
    for (const o of c.options) if (!o.hidden) lines.push(option(o));
    lines.push('.TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nShow the help for the command.');
    // Exit codes are told once, under EXIT STATUS.
    if (c.epilogue && !EXIT_STATUS_OF.has(c.name)) lines.push('.PP', '.nf', roff(c.epilogue), '.fi');
  }
  lines.push(
    '.SH EXIT STATUS',
    '.nf',
    roff(EXIT_CODE_HELP),
    '.fi',
    '.PP',
    roff('scan:'),
    '.nf',
    roff(SCAN_EXIT_HELP),
    '.fi',
    '.PP',
    '.PP',
    roff('clean:'),
    '.nf',
    roff(CLEAN_EXIT_HELP),
    '.fi',
    '.PP',
    roff('history, runbook, pipelines, completion: 0. Every command: 2 for a usage or configuration error, 1 for a bug.'),
    '.SH FILES',
    roff(`The config file is found in this order: --config, else ${CONFIG_SEARCH_DESCRIPTION}.`),
    '.PP',
    roff('<staging-dir>/.crashdiag/audit.jsonl: every action of --fix and clean, one JSON line each.'),
    '.SH ENVIRONMENT',
    '.TP\n.B CRASHDIAG_CONFIG\nThe config file, when \\-\\-config is not given.',
    '.TP\n.B TZ\nThe local time zone: history\'s times and scan \\-\\-daily\'s dates.',
    '.TP\n.B NO_COLOR\nNo colour, even at a terminal.',
    '.TP\n.B COLUMNS\nThe width to fit help and tables to when stdout is not a terminal.',
    '.SH SEE ALSO',
    roff('crashdiag runbook STATE prints the runbook for a state; crashdiag runbook field-guide the questions to ask first.'),
  );
  return `${lines.join('\n')}\n`;
}
