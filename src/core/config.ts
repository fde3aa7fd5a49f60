import { dirname, resolve } from 'node:path';
import { checkRerunWords, splitCommandWords } from './command-words.js';
import { parseDuration } from './duration.js';
import { errnoCode, UsageError } from './errors.js';
import type { FileSystem } from './fs.js';
import type { S3Settings } from './s3-connection.js';
import { isS3Url, normalS3Dir } from './s3-url.js';
import { compileFinalTemplate, compileMarkerTemplate, compileStagingTemplate } from './template.js';

/** One pipeline's settings as written in the config file. */
export interface PipelineConfig {
  readonly outDir?: string;
  readonly stagingDir?: string;
  readonly final?: string;
  readonly staging?: string;
  /** false: the pipeline writes no marker. */
  readonly marker?: string | false;
  readonly freshWithin?: string;
  readonly staleAfter?: string;
  readonly pidCheck?: boolean;
  readonly rerun?: readonly string[];
  readonly quarantine?: string;
  readonly auditLog?: string;
  readonly maxAttempts?: number;
  readonly retryBackoff?: string;
  /** Input templates, `{date}` the run key; absolute once loaded. */
  readonly input?: readonly string[];
}

export interface ConfigFile {
  readonly path: string;
  readonly pipelines: ReadonlyMap<string, PipelineConfig>;
  /** The top-level `s3` block: one object store per config. */
  readonly s3?: S3Settings;
}

type Check = (value: unknown, where: string) => unknown;

const isString: Check = (value, where) => {
  if (typeof value !== 'string' || value.length === 0)
    throw new UsageError(`${where} must be a non-empty string.`);
  return value;
};

// Templates and durations are checked here, not only when a command uses
// them, so the error names the key in the file rather than a flag the user
// never typed.
const isTemplate
  = (compile: (template: string, flag: string) => unknown): Check =>
    (value, where) => {
      const template = isString(value, where) as string;
      compile(template, where);
      return template;
    };

const isDuration
  = (positive: boolean): Check =>
    (value, where) => {
      const text = isString(value, where) as string;
      const ms = parseDuration(text, where);
      if (positive && ms <= 0) throw new UsageError(`${where} must be longer than zero.`);
      return text;
    };

const PIPELINE_KEYS: Readonly<Record<keyof PipelineConfig, Check>> = {
  outDir: isString,
  stagingDir: isString,
  final: isTemplate(compileFinalTemplate),
  staging: isTemplate(compileStagingTemplate),
  marker: (value, where) => {
    if (value === false || value === null) return false;
    isString(value, `${where} (a template, or false for no marker)`);
    return isTemplate(compileMarkerTemplate)(value, where);
  },
  freshWithin: isDuration(false),
  staleAfter: isDuration(true),
  pidCheck: (value, where) => {
    if (typeof value !== 'boolean') throw new UsageError(`${where} must be true or false.`);
    return value;
  },
  rerun: (value, where) => {
    if (typeof value === 'string') return checkRerunWords(splitCommandWords(value, where), where);
    if (Array.isArray(value) && value.length > 0 && value.every((w) => typeof w === 'string')) {
      return checkRerunWords(value, where);
    }
    throw new UsageError(`${where} must be a command string or a non-empty array of words.`);
  },
  quarantine: isString,
  auditLog: isString,
  // The recovery loop (issue 10).
  maxAttempts: (value, where) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
      throw new UsageError(`${where} must be a whole number, 0 or more (0 turns crash-loop detection off).`);
    return value;
  },
  retryBackoff: isDuration(false),
  input: (value, where) => {
    const list = typeof value === 'string' ? [value] : value;
    if (!Array.isArray(list) || list.length === 0 || !list.every((v) => typeof v === 'string' && v.length > 0))
      throw new UsageError(`${where} must be a path template or a non-empty list of them.`);
    return list as string[];
  },
};

const DIR_KEYS = new Set(['outDir', 'stagingDir', 'quarantine', 'auditLog']);

/** The config file's text; undefined when an optional one does not exist. Known failures are one sentence. */
async function readConfigText(fs: FileSystem, path: string, required: boolean): Promise<string | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (error) {
    const code = errnoCode(error);
    if (!required && code === 'ENOENT') return undefined;
    if (code === 'ENOENT') throw new UsageError(`The config file ${path} does not exist.`);
    if (code === 'EISDIR') throw new UsageError(`The config file ${path} is a directory.`);
    if (code === 'EACCES' || code === 'EPERM') {
      throw new UsageError(`The config file ${path} cannot be read (permission denied).`);
    }
    throw error;
  }
  // Editors on Windows save UTF-8 with a byte-order mark; JSON.parse refuses it.
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

/** The file's top-level object, with no key but "pipelines", "$schema" and "s3". */
function topLevelOf(text: string, path: string): object {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`The config file ${path} is not valid JSON: ${(error as Error).message}.`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new UsageError(`The config file ${path} must hold a JSON object with a "pipelines" object.`);
  }
  for (const key of Object.keys(raw)) {
    if (key !== 'pipelines' && key !== '$schema' && key !== 's3') {
      throw new UsageError(
        `The config file ${path} has an unknown top-level key "${key}"; expected "pipelines" (and "s3").`,
      );
    }
  }
  return raw;
}

/** The check for a pipeline setting; an unknown key is refused, with the setting it may have meant. */
function checkFor(key: string, where: string): Check {
  // Own keys only: "constructor" or "__proto__" must not find Object.prototype's.
  const check = Object.hasOwn(PIPELINE_KEYS, key) ? PIPELINE_KEYS[key as keyof PipelineConfig] : undefined;
  if (check) return check;
  const known = Object.keys(PIPELINE_KEYS);
  const near = known.find((k) => k.toLowerCase() === key.toLowerCase().replace(/[-_]/g, ''));
  throw new UsageError(
    `${where}.${key} is not a known setting${near ? ` (did you mean ${near}?)` : ''}.`,
    `Known settings: ${known.join(', ')}.`,
  );
}

/** One pipeline's settings, each checked, with its paths made absolute against `base` (the file's directory). */
function pipelineOf(settings: unknown, where: string, base: string): PipelineConfig {
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
    throw new UsageError(`${where} must be an object.`);
  }
  const parsed: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(settings as Record<string, unknown>)) {
    const checked = checkFor(key, where)(value, `${where}.${key}`);
    parsed[key] = DIR_KEYS.has(key)
      ? directoryOf(checked as string, key, base, `${where}.${key}`)
      : key === 'input'
        ? (checked as string[]).map((template) => resolve(base, template))
        : checked;
  }
  return parsed;
}

/** Every named pipeline of the file's "pipelines" object. */
function pipelinesOf(raw: object, path: string): Map<string, PipelineConfig> {
  const pipelinesRaw = Object.hasOwn(raw, 'pipelines') ? (raw as { pipelines?: unknown }).pipelines : undefined;
  if (typeof pipelinesRaw !== 'object' || pipelinesRaw === null || Array.isArray(pipelinesRaw)) {
    throw new UsageError(`The config file ${path}: "pipelines" must be an object of named pipelines.`);
  }
  const base = dirname(path);
  const pipelines = new Map<string, PipelineConfig>();
  for (const [name, settings] of Object.entries(pipelinesRaw)) {
    const where = `${path}: pipelines.${name}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
      throw new UsageError(`${where}: a pipeline name may use letters, digits, '.', '_' and '-'.`);
    }
    pipelines.set(name, pipelineOf(settings, where, base));
  }
  return pipelines;
}

/** Reads and validates a config file; relative paths in it are relative to the file. */
export async function loadConfig(
  fs: FileSystem,
  path: string,
  required: boolean,
): Promise<ConfigFile | undefined> {
  const text = await readConfigText(fs, path, required);
  if (text === undefined) return undefined;
  const raw = topLevelOf(text, path);
  const s3 = Object.hasOwn(raw, 's3') ? s3SettingsOf((raw as { s3?: unknown }).s3, `${path}: s3`) : undefined;
  const pipelines = pipelinesOf(raw, path);
  return { path, pipelines, ...(s3 === undefined ? {} : { s3 }) };
}

/** A configured directory: an s3:// URL in its one spelling, else a path relative to the config file. */
function directoryOf(value: string, key: string, base: string, where: string): string {
  if (!isS3Url(value)) return resolve(base, value);
  // crashdiag's own records stay local: it appends to them, which S3 cannot do.
  if (key === 'auditLog') throw new UsageError(`${where} must be a local path: the audit log is appended to, and stays local.`);
  return normalS3Dir(value, where);
}

function s3SettingsOf(value: unknown, where: string): S3Settings {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new UsageError(`${where} must be an object: {endpoint, region, forcePathStyle}.`);
  const settings: { endpoint?: string; region?: string; forcePathStyle?: boolean } = {};
  for (const [key, field] of Object.entries(value)) {
    if (key === 'endpoint' || key === 'region') settings[key] = isString(field, `${where}.${key}`) as string;
    else if (key === 'forcePathStyle') {
      if (typeof field !== 'boolean') throw new UsageError(`${where}.forcePathStyle must be true or false.`);
      settings.forcePathStyle = field;
    } else throw new UsageError(`${where}.${key} is not a known setting.`, 'Known settings: endpoint, region, forcePathStyle.');
  }
  return settings;
}

export function pickPipeline(
  config: ConfigFile | undefined,
  name: string,
  configPath: string,
): PipelineConfig {
  if (!config) {
    throw new UsageError(
      `--pipeline ${name} needs a config file, and ${configPath} does not exist.`,
      'Create crashdiag.config.json in this directory, or pass --config FILE.',
    );
  }
  const pipeline = config.pipelines.get(name);
  if (!pipeline) {
    const names = [...config.pipelines.keys()];
    throw new UsageError(
      `The config file ${config.path} has no pipeline named "${name}".`,
      names.length > 0 ? `It has: ${names.join(', ')}.` : 'It defines no pipelines.',
    );
  }
  return pipeline;
}
