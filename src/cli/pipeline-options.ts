import { isAbsolute, join, resolve } from 'node:path';
import { checkRerunWords, splitCommandWords } from '../core/command-words.js';
import { type ConfigFile, loadConfig, type PipelineConfig, pickPipeline } from '../core/config.js';
import {
  DEFAULT_CONFIG_NAME,
  DEFAULT_FRESH_WITHIN,
  DEFAULT_MARKER,
  DEFAULT_STAGING,
  DEFAULT_STALE_AFTER,
} from '../core/defaults.js';
import { checkDateRange, parseDuration } from '../core/duration.js';
import { errnoCode, UsageError } from '../core/errors.js';
import { isS3Url, normalS3Dir } from '../core/s3-url.js';
import type { Neighbour, PipelineSettings } from '../core/settings.js';
import { compileFinalTemplate, compileMarkerTemplate, compileStagingTemplate } from '../core/template.js';
import type { CliIo } from './io.js';

/** The flags every command that looks at a pipeline shares. */
export interface PipelineFlags {
  outDir?: string;
  stagingDir?: string;
  final?: string;
  staging?: string;
  marker?: string | boolean;
  freshWithin?: string;
  staleAfter?: string;
  pidCheck?: boolean;
  now?: string;
  config?: string;
  pipeline?: string;
  rerun?: string;
  maxAttempts?: number;
  retryBackoff?: string;
  input?: string | string[];
}

/** Parses --now, or reads the real clock. */
export function resolveNow(flag: string | undefined, io: CliIo): number {
  if (flag === undefined) return io.now();
  // Date.parse accepts far too much ("1", "May 5", "2026-02-30"); insist on
  // ISO-8601 with a zone whenever a time is given, so every machine reads the
  // same instant.
  const iso = /^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/;
  const match = iso.exec(flag);
  const ms = Date.parse(flag);
  const calendarDay = match ? `${match[1]}-${match[2]}-${match[3]}` : '';
  const realDay
    = !Number.isNaN(Date.parse(calendarDay))
      && new Date(`${calendarDay}T00:00:00Z`).toISOString().startsWith(calendarDay);
  if (!match || Number.isNaN(ms) || !realDay) {
    throw new UsageError(
      `--now ${JSON.stringify(flag)} is not an ISO-8601 time with a time zone.`,
      'For example: --now 2026-04-24T06:08:00Z (or a date alone, read as midnight UTC).',
    );
  }
  return checkDateRange(ms, `--now ${flag}`);
}

/**
 * --now with a command that removes files: refused. A fake clock makes a file
 * written a second ago look long dead, and must never decide a deletion; a
 * dry run shows what the real run would do, so it is refused too.
 */
export function refuseFakeClock(
  flags: { readonly now?: string; readonly dryRun?: boolean },
  command: string,
  realRun: string,
  hint: string,
): void {
  if (flags.now === undefined) return;
  const dry = flags.dryRun ? ` --dry-run shows what the real ${realRun} would do, so it too` : '';
  throw new UsageError(`--now is for reading only: ${command}${dry} judges every file against the real clock.`, hint);
}

function rejectEmpty(flags: PipelineFlags): void {
  for (const [flag, value] of [
    ['--out-dir', flags.outDir],
    ['--staging-dir', flags.stagingDir],
    ['--pipeline', flags.pipeline],
    ['--config', flags.config],
  ] as const) {
    if (value !== undefined && value.trim() === '') throw new UsageError(`${flag} is empty.`);
  }
}

/** Where a machine-wide config lives; tests pass their own in `io.systemConfigDir`. */
export const SYSTEM_CONFIG_DIR = '/etc/crashdiag';

/** The discovery order, as the help and the README state it. */
export const CONFIG_SEARCH_DESCRIPTION
  = '$CRASHDIAG_CONFIG, else ./crashdiag.config.json, else $XDG_CONFIG_HOME/crashdiag/config.json (~/.config), else /etc/crashdiag/config.json';

/** The files searched for a config when neither --config nor $CRASHDIAG_CONFIG names one, in order. */
export function configSearchPath(io: Pick<CliIo, 'cwd' | 'env' | 'systemConfigDir'>): string[] {
  const paths = [resolve(io.cwd, DEFAULT_CONFIG_NAME)];
  const xdg = io.env.XDG_CONFIG_HOME;
  // The XDG spec: a relative $XDG_CONFIG_HOME is invalid and ignored.
  const configHome = xdg && isAbsolute(xdg) ? xdg : io.env.HOME ? join(io.env.HOME, '.config') : undefined;
  if (configHome !== undefined) paths.push(join(configHome, 'crashdiag', 'config.json'));
  paths.push(join(io.systemConfigDir ?? SYSTEM_CONFIG_DIR, 'config.json'));
  return paths;
}

/** Whether a search-path entry can be looked at at all: not behind a directory this user may not search. */
async function reachable(io: CliIo, path: string): Promise<boolean> {
  try {
    await io.fs.stat(path);
    return true;
  } catch (error) {
    const code = errnoCode(error);
    return code !== 'EACCES' && code !== 'EPERM';
  }
}

/**
 * The config file in play: --config, else $CRASHDIAG_CONFIG (either must
 * exist), else the first of the search path that exists. `path` is the file
 * in use, or when there is none the first place looked. `needed`: no config
 * found is a usage error, saying where it looked.
 */
export async function readConfigFor(flags: PipelineFlags, io: CliIo, needed: boolean) {
  const named = flags.config ?? (io.env.CRASHDIAG_CONFIG || undefined);
  if (named !== undefined) {
    const path = resolve(io.cwd, named);
    return { path, config: await loadConfig(io.fs, path, true) };
  }
  const searched = configSearchPath(io);
  for (const path of searched) {
    // A place this user cannot even look into ($HOME of another user, under
    // sudo or a cron job's odd environment) holds no config for them; a file
    // that is there but unreadable is still an error, from loadConfig.
    if (!(await reachable(io, path))) continue;
    let config: Awaited<ReturnType<typeof loadConfig>>;
    try {
      config = await loadConfig(io.fs, path, false);
    } catch (error) {
      // A search path through a file ($HOME/.config being a file) holds no config.
      if (errnoCode(error) === 'ENOTDIR') continue;
      throw error;
    }
    if (config) return { path, config };
  }
  if (needed) {
    const who
      = flags.pipeline !== undefined
        ? `--pipeline ${flags.pipeline} needs a config file, and none was found`
        : (flags as { all?: boolean }).all
            ? '--all needs a config file, and none was found'
            : 'No config file found';
    throw new UsageError(
      `${who}; looked for ${searched.join(', ')}.`,
      'Pass --config FILE or set CRASHDIAG_CONFIG, or give the layout with --out-dir, --staging-dir and --final.',
    );
  }
  return { path: searched[0] as string, config: undefined };
}

/** The three places every layout needs, from the flags or the pipeline's config; missing, said with where to set it. */
function requiredLayout(
  flags: PipelineFlags,
  pipelineName: string | undefined,
  fromConfig: PipelineConfig,
): { outDir: string; stagingDir: string; final: string } {
  const outDir = flags.outDir ?? fromConfig.outDir;
  const stagingDir = flags.stagingDir ?? fromConfig.stagingDir;
  const final = flags.final ?? fromConfig.final;
  const hint = pipelineName
    ? `Set it in pipeline "${pipelineName}" or pass the flag.`
    : 'Pass the flag, or pick a pipeline from the config with --pipeline NAME.';
  if (outDir === undefined)
    throw new UsageError('Missing --out-dir: where the job publishes its output.', hint);
  if (stagingDir === undefined)
    throw new UsageError('Missing --staging-dir: where the job writes its staging files.', hint);
  if (final === undefined) {
    throw new UsageError(
      'Missing --final: the published output\'s name, e.g. refunds_settled_{date}.csv.',
      hint,
    );
  }
  return { outDir, stagingDir, final };
}

/** The output's name and its marker's (null: --no-marker), which must not name the output itself. */
function outputNames(
  flags: PipelineFlags,
  fromConfig: PipelineConfig,
  final: string,
): Pick<PipelineSettings, 'final' | 'marker'> {
  const markerFlag = flags.marker;
  if (markerFlag === true)
    throw new UsageError('--marker needs a template, e.g. --marker \'{final}.success\'.');
  const markerSource = markerFlag ?? fromConfig.marker ?? DEFAULT_MARKER;
  const finalTemplate = compileFinalTemplate(final);
  const marker = markerSource === false ? null : compileMarkerTemplate(markerSource);
  if (marker && marker.nameFor('k', finalTemplate.nameFor('k')) === finalTemplate.nameFor('k')) {
    throw new UsageError(`--marker ${JSON.stringify(markerSource)} names the output itself.`);
  }
  return { final: finalTemplate, marker };
}

/** How writers and outputs are judged by age. */
function ageLimits(flags: PipelineFlags, fromConfig: PipelineConfig): Pick<PipelineSettings, 'freshWithinMs' | 'staleAfterMs'> {
  const freshWithinMs = parseDuration(
    flags.freshWithin ?? fromConfig.freshWithin ?? DEFAULT_FRESH_WITHIN,
    '--fresh-within',
  );
  const staleAfterMs = parseDuration(
    flags.staleAfter ?? fromConfig.staleAfter ?? DEFAULT_STALE_AFTER,
    '--stale-after',
  );
  if (staleAfterMs <= 0) throw new UsageError('--stale-after must be longer than zero.');
  return { freshWithinMs, staleAfterMs };
}

/** The recovery loop's settings: attempts before a crash loop, the backoff, the inputs a re-run reads. */
function recoverySettings(
  flags: PipelineFlags,
  fromConfig: PipelineConfig,
  absolute: (path: string) => string,
): Pick<PipelineSettings, 'maxAttempts' | 'retryBackoffMs' | 'inputs'> {
  const maxAttempts = flags.maxAttempts ?? fromConfig.maxAttempts;
  if (maxAttempts !== undefined && (!Number.isInteger(maxAttempts) || maxAttempts < 0))
    throw new UsageError('--max-attempts must be a whole number, 0 or more (0 turns crash-loop detection off).');
  const backoff = flags.retryBackoff ?? fromConfig.retryBackoff;
  const retryBackoffMs = backoff === undefined ? undefined : parseDuration(backoff, '--retry-backoff');
  // Several --input flags are several inputs, all checked; given on the command line they replace the config's list.
  const inputFlags = flags.input === undefined ? undefined : [flags.input].flat();
  if (inputFlags?.some((input) => input.trim() === '')) throw new UsageError('--input is empty.');
  const inputs = inputFlags !== undefined ? inputFlags.map(absolute) : fromConfig.input;
  return { maxAttempts, retryBackoffMs, inputs };
}

/** Merges flags over the named pipeline over the defaults, and checks it all. */
export function resolveSettings(
  flags: PipelineFlags,
  pipelineName: string | undefined,
  fromConfig: PipelineConfig,
  cwd: string,
): PipelineSettings {
  rejectEmpty(flags);
  const { outDir, stagingDir, final } = requiredLayout(flags, pipelineName, fromConfig);
  const names = outputNames(flags, fromConfig, final);
  const rerun
    = flags.rerun !== undefined ? checkRerunWords(splitCommandWords(flags.rerun, '--rerun')) : fromConfig.rerun;
  const absolute = (path: string) => (isAbsolute(path) ? resolve(path) : resolve(cwd, path));
  const directory = (path: string, flag: string) => (isS3Url(path) ? normalS3Dir(path, flag) : absolute(path));
  const ages = ageLimits(flags, fromConfig);
  const recovery = recoverySettings(flags, fromConfig, absolute);
  return {
    pipeline: pipelineName,
    outDir: directory(outDir, '--out-dir'),
    stagingDir: directory(stagingDir, '--staging-dir'),
    ...names,
    staging: compileStagingTemplate(flags.staging ?? fromConfig.staging ?? DEFAULT_STAGING),
    ...ages,
    pidCheck: flags.pidCheck ?? fromConfig.pidCheck ?? true,
    rerun,
    quarantine: fromConfig.quarantine,
    auditLog: fromConfig.auditLog,
    ...recovery,
  };
}

/** One pipeline of the config as a neighbour: what keeps its published files and live writers safe. */
function neighbourOf(name: string, pipeline: PipelineConfig): Neighbour {
  const final = pipeline.final === undefined ? undefined : compileFinalTemplate(pipeline.final);
  const marker = pipeline.marker ?? DEFAULT_MARKER;
  return {
    pipeline: name,
    outDir: pipeline.outDir,
    stagingDir: pipeline.stagingDir,
    final,
    staging: compileStagingTemplate(pipeline.staging ?? DEFAULT_STAGING),
    marker: marker === false || final === undefined ? null : compileMarkerTemplate(marker),
    staleAfterMs: parseDuration(pipeline.staleAfter ?? DEFAULT_STALE_AFTER, '--stale-after'),
    pidCheck: pipeline.pidCheck ?? true,
  };
}

/**
 * The config's pipelines other than `except`, as the config alone describes
 * them (flags describe the pipeline acted on, not its neighbours).
 */
export function neighboursIn(config: ConfigFile | undefined, except: string | undefined): Neighbour[] {
  const neighbours: Neighbour[] = [];
  for (const [name, pipeline] of config?.pipelines ?? []) {
    if (name !== except) neighbours.push(neighbourOf(name, pipeline));
  }
  return neighbours;
}

/**
 * The picked pipeline as its config describes it (flags filling only what the
 * config leaves out), when the flags move its directories or rename its
 * files: its outputs where the config puts them are still published, and
 * the flagged layout must not read them as orphans.
 */
function asConfigured(flags: PipelineFlags, name: string, picked: PipelineConfig, acted: PipelineSettings) {
  const completed: PipelineConfig = {
    ...picked,
    outDir: picked.outDir ?? acted.outDir,
    stagingDir: picked.stagingDir ?? acted.stagingDir,
    final: picked.final ?? acted.final.source,
    staging: picked.staging ?? acted.staging.source,
    marker: picked.marker ?? (typeof flags.marker === 'string' || flags.marker === false ? flags.marker : undefined),
  };
  const moved
    = completed.outDir !== acted.outDir
      || completed.stagingDir !== acted.stagingDir
      || completed.final !== acted.final.source
      || completed.staging !== acted.staging.source
      || (completed.marker === false ? null : (completed.marker ?? DEFAULT_MARKER)) !== (acted.marker?.source ?? null);
  if (!moved) return [];
  // Its names only: how its writers are judged is the flags' to say (--stale-after, --no-pid-check).
  return [{ ...neighbourOf(name, completed), staleAfterMs: acted.staleAfterMs, pidCheck: acted.pidCheck }];
}

/**
 * Flags plus, when --pipeline is given, that pipeline from the config. Any
 * config in use (named, or present in the working directory) also supplies
 * the neighbours every destructive action must respect.
 */
export async function settingsFromFlags(flags: PipelineFlags, io: CliIo): Promise<PipelineSettings> {
  if (flags.pipeline === undefined) {
    // The flags are checked before any I/O, the config read after.
    const settings = resolveSettings(flags, undefined, {}, io.cwd);
    const { config } = await readConfigFor(flags, io, false);
    return { ...settings, neighbours: neighboursIn(config, undefined), s3: config?.s3 };
  }
  const { path, config } = await readConfigFor(flags, io, true);
  const picked = pickPipeline(config, flags.pipeline, path);
  const settings = resolveSettings(flags, flags.pipeline, picked, io.cwd);
  return {
    ...settings,
    neighbours: [
      ...neighboursIn(config, flags.pipeline),
      ...asConfigured(flags, flags.pipeline, picked, settings),
    ],
    s3: config?.s3,
  };
}
