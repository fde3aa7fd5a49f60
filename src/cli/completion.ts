import { STATES } from '../core/states.js';
import { COMMANDS, type CommandSpec, type OptionSpec } from './command-specs.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

// Flags whose value is a directory, a file, or one of a few words.
const DIR_FLAGS = ['out-dir', 'staging-dir', 'quarantine'];
const FILE_FLAGS = ['config', 'audit-log', 'prom-file'];
const WORDS: Readonly<Record<string, readonly string[]>> = {
  format: ['table', 'json', 'prom'],
  state: [...STATES],
};

const visible = (command: CommandSpec) => command.options.filter((o) => !o.hidden);
const flagWords = (command: CommandSpec) =>
  visible(command)
    .flatMap((o) => (o.type === 'boolean' && o.defaultDescription === 'true' ? [`--${o.name}`, `--no-${o.name}`] : [`--${o.name}`]))
    .concat(['--help'])
    .join(' ');
const positionalWords = (command: CommandSpec) =>
  command.name === 'runbook' ? [...STATES, 'field-guide'].join(' ') : command.name === 'completion' ? SHELLS.join(' ') : '';

// Pipeline names come from the config at completion time, through the same
// discovery as every command (and the --config on the line, if any).
const PIPELINES_BASH = 'crashdiag completion --list-pipelines ${config:+--config "$config"} 2>/dev/null';

function bash(): string {
  const perCommand = COMMANDS.map(
    (c) => `    ${c.name}) opts="${flagWords(c)}"; words="${positionalWords(c)}" ;;`,
  ).join('\n');
  return `# crashdiag completion for bash. Load it with
#   source <(crashdiag completion bash)
# or save it as /etc/bash_completion.d/crashdiag.
_crashdiag() {
  local cur prev cmd config opts words i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  cmd="\${COMP_WORDS[1]}"
  for ((i = 2; i < COMP_CWORD; i++)); do
    [ "\${COMP_WORDS[i]}" = --config ] && config="\${COMP_WORDS[i+1]}"
  done
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${COMMANDS.map((c) => c.name).join(' ')} --help --version" -- "$cur"))
    return
  fi
  case "$prev" in
    --pipeline) COMPREPLY=($(compgen -W "$(${PIPELINES_BASH})" -- "$cur")); return ;;
    ${DIR_FLAGS.map((f) => `--${f}`).join('|')}) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    ${FILE_FLAGS.map((f) => `--${f}`).join('|')}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
${Object.entries(WORDS)
  .map(([flag, words]) => `    --${flag}) COMPREPLY=($(compgen -W "${words.join(' ')}" -- "$cur")); return ;;`)
  .join('\n')}
  esac
  case "$cmd" in
${perCommand}
    *) return ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  fi
}
complete -F _crashdiag crashdiag
`;
}

// Single-quoted for zsh: a quote inside is closed, escaped and reopened.
function zshQuote(text: string): string {
  return `'${text.replace(/'/g, '\'\\\'\'')}'`;
}

function zshOption(option: OptionSpec): string[] {
  const describe = `[${option.describe.replace(/[[\]']/g, '')}]`;
  const value = DIR_FLAGS.includes(option.name)
    ? ':dir:_files -/'
    : FILE_FLAGS.includes(option.name)
      ? ':file:_files'
      : option.name === 'pipeline'
        ? ':pipeline:_crashdiag_pipelines'
        : WORDS[option.name]
          ? `:${option.name}:(${(WORDS[option.name] as readonly string[]).join(' ')})`
          : option.type === 'boolean'
            ? ''
            : `:${option.name}:`;
  const specs = [`'${option.repeatable ? '*' : ''}--${option.name}${describe}${value}'`];
  if (option.type === 'boolean' && option.defaultDescription === 'true') specs.push(`'--no-${option.name}${describe}'`);
  return specs;
}

function zsh(): string {
  const commands = COMMANDS.map((c) => `    ${zshQuote(`${c.name}:${c.describe}`)}`).join('\n');
  const cases = COMMANDS.map((c) => {
    const positional = positionalWords(c);
    const args = [
      ...visible(c).flatMap(zshOption),
      ...(positional ? [`'1:${c.positional?.name ?? 'arg'}:(${positional.replace(/\//g, '\\/')})'`] : []),
    ];
    return `    ${c.name})\n      _arguments -s ${args.join(' \\\n        ')} ;;`;
  }).join('\n');
  return `#compdef crashdiag
# crashdiag completion for zsh. Save it as _crashdiag in a directory on $fpath,
# or load it with: source <(crashdiag completion zsh)
_crashdiag_pipelines() {
  local -a names
  names=(\${(f)"$(crashdiag completion --list-pipelines 2>/dev/null)"})
  _describe pipeline names
}
_crashdiag() {
  local -a commands
  commands=(
${commands}
  )
  if (( CURRENT == 2 )); then
    _describe command commands
    return
  fi
  words=("\${words[@]:1}")
  (( CURRENT-- ))
  case "\${words[1]}" in
${cases}
  esac
}
if [ "$funcstack[1]" = "_crashdiag" ]; then _crashdiag "$@"; else compdef _crashdiag crashdiag; fi
`;
}

function fishQuote(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, '\\\'')}'`;
}

function fish(): string {
  const lines = [
    '# crashdiag completion for fish. Save it as ~/.config/fish/completions/crashdiag.fish,',
    '# or load it with: crashdiag completion fish | source',
    'complete -c crashdiag -f',
  ];
  for (const c of COMMANDS) {
    lines.push(`complete -c crashdiag -n __fish_use_subcommand -a ${c.name} -d ${fishQuote(c.describe)}`);
  }
  for (const c of COMMANDS) {
    const when = `-n '__fish_seen_subcommand_from ${c.name}'`;
    const positional = positionalWords(c);
    if (positional) lines.push(`complete -c crashdiag ${when} -a ${fishQuote(positional)}`);
    for (const o of visible(c)) {
      const value = DIR_FLAGS.includes(o.name)
        ? ' -r -a \'(__fish_complete_directories)\''
        : FILE_FLAGS.includes(o.name)
          ? ' -r -F'
          : o.name === 'pipeline'
            ? ' -x -a \'(crashdiag completion --list-pipelines 2>/dev/null)\''
            : WORDS[o.name]
              ? ` -x -a ${fishQuote((WORDS[o.name] as readonly string[]).join(' '))}`
              : o.type === 'boolean'
                ? ''
                : ' -x';
      lines.push(`complete -c crashdiag ${when} -l ${o.name}${value} -d ${fishQuote(o.describe)}`);
      if (o.type === 'boolean' && o.defaultDescription === 'true')
        lines.push(`complete -c crashdiag ${when} -l no-${o.name} -d ${fishQuote(o.describe)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** A completion script for the shell: commands, flags, and pipeline names from the config. */
export function completionScript(shell: Shell): string {
  return shell === 'bash' ? bash() : shell === 'zsh' ? zsh() : fish();
}
