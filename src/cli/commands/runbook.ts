import { shellQuote, splitCommandWords } from '../../core/command-words.js';
import { pickPipeline, type PipelineConfig } from '../../core/config.js';
import { UsageError } from '../../core/errors.js';
import { FIELD_GUIDE, RUNBOOKS, STATES, type State } from '../../core/states.js';
import type { CliIo } from '../io.js';
import { DEFAULT_MARKER, DEFAULT_STAGING } from '../../core/defaults.js';
import { type PipelineFlags, readConfigFor } from '../pipeline-options.js';

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

async function readRunbook(io: CliIo, relative: string): Promise<string> {
  try {
    return await io.runbooks.read(relative);
  } catch {
    throw new Error(`runbook ${relative} is missing from the installation (${io.runbooks.pathOf(relative)})`);
  }
}

/** The user's layout, as far as the flags and --pipeline say it: each part may be missing. */
export interface RunbookLayout {
  readonly pipeline?: string;
  readonly outDir?: string;
  readonly stagingDir?: string;
  readonly final?: string;
  readonly staging?: string;
  readonly marker?: string | false;
  readonly rerun?: readonly string[];
}

const EXAMPLE = {
  pipeline: 'refunds',
  outDir: '/data/refunds/out',
  stagingDir: '/data/refunds/_staging',
  final: 'refunds_settled_{date}.csv',
};

function replaceAll(text: string, from: string, to: string): string {
  return text.split(from).join(to);
}

/**
 * The runbook with the example's names (`/data/refunds/out`,
 * `refunds_settled_{date}.csv`, `--pipeline refunds`, `JOB_CMD`) replaced by
 * the user's, so the commands in it can be pasted as they are.
 */
export function fillRunbook(text: string, layout: RunbookLayout): string {
  let filled = text;
  const final = layout.final ?? EXAMPLE.final;
  const staging = layout.staging ?? DEFAULT_STAGING;
  const marker = layout.marker ?? DEFAULT_MARKER;
  const shellName = (template: string, pid: string) =>
    template.replace(/\{date\}/g, '$RUN_KEY').replace(/\{pid\}/g, pid).replace(/\{host\}/g, '$HOST');
  const exampleFinal = (key: string) => EXAMPLE.final.replace('{date}', key);
  // The marker's names first: they hold the output's name.
  if (marker === false) {
    filled = filled.replace(/ "\$OUT_DIR\/refunds_settled_\$RUN_KEY\.csv\.success"/g, '');
  } else {
    const markerName = (key: string) => marker.replace(/\{final\}/g, final).replace(/\{date\}/g, key);
    filled = replaceAll(filled, `${exampleFinal('$RUN_KEY')}.success`, markerName('$RUN_KEY'));
    filled = replaceAll(filled, `${exampleFinal('2026-04-24')}.success`, markerName('2026-04-24'));
    filled = replaceAll(filled, '`{final}.success`', `\`${marker}\``);
  }
  filled = replaceAll(filled, exampleFinal('$RUN_KEY'), final.replace(/\{date\}/g, '$RUN_KEY'));
  filled = replaceAll(filled, exampleFinal('2026-04-24'), final.replace(/\{date\}/g, '2026-04-24'));
  filled = replaceAll(filled, EXAMPLE.final, final);
  if (layout.staging !== undefined) {
    filled = replaceAll(filled, '$RUN_KEY.$PID.csv', shellName(staging, '$PID'));
    filled = replaceAll(filled, '$RUN_KEY.91247.csv', shellName(staging, '91247'));
    filled = replaceAll(filled, '"$RUN_KEY.*.csv"', `"${shellName(staging, '*')}"`);
    filled = replaceAll(filled, '`{date}.{pid}.csv`', `\`${staging}\``);
  }
  if (layout.outDir !== undefined) filled = replaceAll(filled, EXAMPLE.outDir, layout.outDir);
  if (layout.stagingDir !== undefined) filled = replaceAll(filled, EXAMPLE.stagingDir, layout.stagingDir);
  if (layout.pipeline !== undefined) {
    filled = replaceAll(filled, `PIPELINE=${EXAMPLE.pipeline}`, `PIPELINE=${layout.pipeline}`);
    filled = replaceAll(filled, `--pipeline ${EXAMPLE.pipeline}`, `--pipeline ${layout.pipeline}`);
  } else if (layout.outDir !== undefined && layout.stagingDir !== undefined && layout.final !== undefined) {
    // No pipeline in a config: the commands carry the layout flags instead.
    const flags = ['--out-dir "$OUT_DIR" --staging-dir "$STAGING_DIR"', `--final ${shellQuote(layout.final)}`];
    if (layout.staging !== undefined) flags.push(`--staging ${shellQuote(layout.staging)}`);
    if (layout.marker === false) flags.push('--no-marker');
    else if (layout.marker !== undefined) flags.push(`--marker ${shellQuote(layout.marker)}`);
    filled = replaceAll(filled, 'crashdiag history --pipeline "$PIPELINE"', 'crashdiag history --staging-dir "$STAGING_DIR"');
    filled = replaceAll(filled, `--pipeline "$PIPELINE"`, flags.join(' '));
    filled = replaceAll(filled, `--pipeline ${EXAMPLE.pipeline}`, flags.join(' '));
    filled = replaceAll(filled, ` PIPELINE=${EXAMPLE.pipeline}`, '');
  }
  if (layout.rerun !== undefined) {
    const rerun = layout.rerun;
    const inFlag = rerun.map((w) => (w.includes('{date}') ? w : shellQuote(w))).join(' ');
    const byHand = rerun
      .map((w) => (w.includes('{date}') ? `"${w.replaceAll('{date}', '$RUN_KEY')}"` : shellQuote(w)))
      .join(' ');
    filled = replaceAll(filled, '\'JOB_CMD --date {date}\'', shellQuote(inFlag));
    filled = replaceAll(filled, 'JOB_CMD --date "$RUN_KEY"', byHand);
    filled = replaceAll(filled, '\'JOB_CMD\'', shellQuote(rerun[0] ?? 'JOB_CMD'));
  }
  return filled;
}

async function layoutFrom(flags: PipelineFlags, io: CliIo): Promise<RunbookLayout | undefined> {
  let fromConfig: PipelineConfig = {};
  if (flags.pipeline !== undefined) {
    const { path, config } = await readConfigFor(flags, io, true);
    fromConfig = pickPipeline(config, flags.pipeline, path);
  }
  const path = await import('node:path');
  const dir = (value: string | undefined) => (value === undefined ? undefined : path.resolve(io.cwd, value));
  const layout: RunbookLayout = {
    pipeline: flags.pipeline,
    outDir: dir(flags.outDir) ?? fromConfig.outDir,
    stagingDir: dir(flags.stagingDir) ?? fromConfig.stagingDir,
    final: flags.final ?? fromConfig.final,
    staging: flags.staging ?? fromConfig.staging,
    marker: typeof flags.marker === 'string' || flags.marker === false ? flags.marker : fromConfig.marker,
    rerun: flags.rerun !== undefined ? splitCommandWords(flags.rerun, '--rerun') : fromConfig.rerun,
  };
  return Object.values(layout).some((v) => v !== undefined) ? layout : undefined;
}

export async function runbookCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const relative = runbookFor(typeof argv.state === 'string' ? argv.state : '');
  const text = await readRunbook(io, relative);
  const layout = await layoutFrom(argv, io);
  io.stdout.write(layout ? fillRunbook(text, layout) : text);
  return 0;
}
