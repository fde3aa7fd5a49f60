import { UsageError } from './errors.js';

/**
 * File-name templates. `{date}` stands for the run key, `{pid}` for the
 * writer's process id, `{host}` for the writer's host name and, in the marker
 * template only, `{final}` for the published output's name.
 */
export type Placeholder = 'date' | 'pid' | 'host' | 'final';

type Part = { literal: string } | { placeholder: Placeholder };

const PLACEHOLDER_PATTERN = /\{([^{}]*)\}/g;

// A PID the kernel can hand out: Linux caps pid_max at 2^22.
export const MAX_PID = 4_194_304;

function parseTemplate(template: string, flag: string, allowed: readonly Placeholder[]): Part[] {
  if (template.length === 0) throw new UsageError(`${flag} is empty.`);
  if (/[/\\]/.test(template)) {
    throw new UsageError(
      `${flag} ${JSON.stringify(template)} contains a path separator; it names a file inside its directory.`,
    );
  }
  // eslint-disable-next-line no-control-regex -- refusing control characters in file names
  if (/[\u0000-\u001f\u007f]/.test(template)) {
    throw new UsageError(`${flag} ${JSON.stringify(template)} contains a control character.`);
  }
  const parts: Part[] = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER_PATTERN)) {
    const name = match[1] ?? '';
    if (!(allowed as readonly string[]).includes(name)) {
      throw new UsageError(
        `${flag} ${JSON.stringify(template)} uses {${name}}, which it does not know.`,
        `It may use ${allowed.map((p) => `{${p}}`).join(', ')}.`,
      );
    }
    if (match.index > last) parts.push({ literal: template.slice(last, match.index) });
    parts.push({ placeholder: name as Placeholder });
    last = match.index + match[0].length;
  }
  if (last < template.length) parts.push({ literal: template.slice(last) });
  for (const part of parts) {
    if ('literal' in part && /[{}]/.test(part.literal)) {
      throw new UsageError(`${flag} ${JSON.stringify(template)} has an unmatched brace.`);
    }
  }
  return parts;
}

function count(parts: readonly Part[], name: Placeholder): number {
  return parts.filter((p) => 'placeholder' in p && p.placeholder === name).length;
}

function substitute(parts: Part[], values: Partial<Record<Placeholder, string>>): string {
  return parts.map((p) => ('literal' in p ? p.literal : (values[p.placeholder] ?? ''))).join('');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function checkFileName(name: string, flag: string): void {
  if (name === '.' || name === '..' || name.length === 0) {
    throw new UsageError(`${flag} produces the name ${JSON.stringify(name)}, which is not a file name.`);
  }
  // NAME_MAX counts bytes, and file names are UTF-8: 'é' is one character but two bytes.
  if (Buffer.byteLength(name, 'utf8') > 255) {
    throw new UsageError(`${flag} produces a name longer than 255 bytes.`);
  }
}

/** The published output's name: `refunds_settled_{date}.csv`, or a fixed name. */
export interface FinalTemplate {
  readonly source: string;
  /** True when the name carries the run key, so any age of the file belongs to this run. */
  readonly keyed: boolean;
  nameFor(runKey: string): string;
  /** For listing a directory: the run key a name belongs to, or undefined. */
  runKeyOf(name: string): string | undefined;
}

export function compileFinalTemplate(template: string, flag = '--final'): FinalTemplate {
  const parts = parseTemplate(template, flag, ['date']);
  const keyed = count(parts, 'date') > 0;
  // A group name may appear only once in a RegExp: the first {date} captures,
  // any later one is a backreference to it.
  let captured = false;
  const datePattern = (): string => {
    if (captured) return '\\k<date>';
    captured = true;
    return '(?<date>.+)';
  };
  const pattern = new RegExp(
    `^${parts.map((p) => ('literal' in p ? escapeRegExp(p.literal) : datePattern())).join('')}$`,
    's',
  );
  // With several {date}s a name only belongs to a key when they all agree.
  const runKeyOf = (name: string): string | undefined => {
    const date = pattern.exec(name)?.groups?.date;
    return date !== undefined && substitute(parts, { date }) === name ? date : undefined;
  };
  checkFileName(substitute(parts, { date: 'x' }), flag);
  return { source: template, keyed, nameFor: (runKey) => substitute(parts, { date: runKey }), runKeyOf };
}

/** The success marker's name, from `{final}.success` or a name of its own. */
export interface MarkerTemplate {
  readonly source: string;
  nameFor(runKey: string, finalName: string): string;
  /** For listing a directory: the run key a marker name belongs to, or undefined. */
  runKeyOf(name: string, final: FinalTemplate): string | undefined;
}

/**
 * Whether every run key's marker has the one name (`_SUCCESS`, not
 * `{final}.success`): a listing then cannot say whose it is, and it must be
 * looked at for every key, as diagnose does.
 */
export function markerNameIsShared(final: FinalTemplate, marker: MarkerTemplate | null): boolean {
  return marker !== null && marker.nameFor('0', final.nameFor('0')) === marker.nameFor('1', final.nameFor('1'));
}

export function compileMarkerTemplate(template: string, flag = '--marker'): MarkerTemplate {
  const parts = parseTemplate(template, flag, ['final', 'date']);
  checkFileName(substitute(parts, { final: 'x', date: 'x' }), flag);
  const nameFor = (runKey: string, finalName: string) =>
    substitute(parts, { date: runKey, final: finalName });
  // One pattern per output template, with {final} spelled out as that
  // template's own parts and every {date} (the marker's and the output's)
  // one named group: the regex engine then tries every split, where taking
  // the first capture as {final} misread `{date}.{final}` (the output's
  // name has dots) and `{final}.{date}` beside a fixed-name output.
  const patterns = new Map<string, RegExp | null>();
  const patternBeside = (final: FinalTemplate): RegExp | null => {
    let pattern = patterns.get(final.source);
    if (pattern === undefined) {
      let captured = false;
      const date = () => {
        if (captured) return '\\k<date>';
        captured = true;
        return '(?<date>.+)';
      };
      const finalParts = parseTemplate(final.source, '--final', ['date']);
      const spell = (part: Part): string => {
        if ('literal' in part) return escapeRegExp(part.literal);
        if (part.placeholder === 'final') return finalParts.map(spell).join('');
        return date();
      };
      const source = parts.map(spell).join('');
      pattern = captured ? new RegExp(`^${source}$`, 's') : null;
      patterns.set(final.source, pattern);
    }
    return pattern;
  };
  return {
    source: template,
    nameFor,
    runKeyOf(name, final) {
      const key = patternBeside(final)?.exec(name)?.groups?.date;
      // Accept only what this template would itself produce for that key.
      return key !== undefined && nameFor(key, final.nameFor(key)) === name ? key : undefined;
    },
  };
}

export interface StagingName {
  readonly runKey: string;
  readonly pid: number;
  readonly host: string | undefined;
}

/** The staging file's name: `{date}.{pid}.csv`, optionally with `{host}`. */
export interface StagingTemplate {
  readonly source: string;
  /** A matcher for one run key: only names that match it are this run's. */
  matcherFor(runKey: string): (name: string) => StagingName | undefined;
  /** A matcher for any run key, for listing every run in one pass. */
  matchAny(name: string): StagingName | undefined;
  /** The literal text every name for this key starts with: a cheap first filter. */
  prefixFor(runKey: string): string;
}

const HOST_PATTERN = '[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?';
const HOST_CHARACTERS = /^[A-Za-z0-9_.-]+$/;

/** The literal a run key may not hold, and where it stands among the template's parts. */
interface KeySeparator {
  readonly text: string;
  readonly at: number;
}

/**
 * The literal that separates {date} from the side of the name where {host}
 * is, when a host name could hold it: then so must no run key, or a name
 * would parse for two keys. With `{date}.{host}.{pid}.csv`,
 * `2026-04-24.retry.otherhost.123.csv` is run `2026-04-24` from host
 * `retry.otherhost`, or run `2026-04-24.retry` from host `otherhost`: both
 * the key and the host may hold dots. The rule: under such a template a run
 * key may not contain the separator (a key with a dot is refused, exit 2,
 * and a name whose key would hold one is no staging name), so each name
 * parses one way, host names may keep their dots (FQDNs), and dates are
 * unaffected. A separator no host can hold (`{date}@{host}.{pid}.csv`)
 * needs no rule. Also when {pid} sits between them: `K.1.2.h.csv` under
 * `{date}.{pid}.{host}.csv` is K from host 2.h, or K.1 from host h.
 */
function keySeparatorOf(parts: readonly Part[]): KeySeparator | undefined {
  const index = (name: Placeholder) => parts.findIndex((p) => 'placeholder' in p && p.placeholder === name);
  const date = index('date');
  const host = index('host');
  if (host < 0) return undefined;
  const at = host > date ? date + 1 : date - 1;
  const beside = parts[at];
  // Placeholders are never side by side, so a literal is always there.
  if (!beside || !('literal' in beside)) return undefined;
  return HOST_CHARACTERS.test(beside.literal) ? { text: beside.literal, at } : undefined;
}

/**
 * Refuses a staging template under which one name could be read two ways:
 * {date} and {pid} each exactly once, {host} at most once, no two
 * placeholders side by side, and no digit beside {pid}.
 */
function checkStagingParts(parts: readonly Part[], template: string, flag: string): void {
  for (const name of ['date', 'pid'] as const) {
    if (count(parts, name) !== 1) {
      throw new UsageError(
        `${flag} ${JSON.stringify(template)} must contain {${name}} exactly once.`,
        'The staging name must carry the run key and the writer PID, e.g. {date}.{pid}.csv.',
      );
    }
  }
  if (count(parts, 'host') > 1) {
    throw new UsageError(`${flag} ${JSON.stringify(template)} may contain {host} at most once.`);
  }
  for (let i = 1; i < parts.length; i++) {
    const a = parts[i - 1];
    const b = parts[i];
    if (a && b && 'placeholder' in a && 'placeholder' in b) {
      throw new UsageError(
        `${flag} ${JSON.stringify(template)} puts {${a.placeholder}} and {${b.placeholder}} side by side; separate them, e.g. with a dot.`,
      );
    }
  }
  // A digit beside {pid} moves the PID's edge: with {date}1{pid}.csv,
  // "K1123.csv" reads as key K, PID 123 and as key K1, PID 23. One name must
  // never belong to two run keys, so the PID is fenced by non-digits.
  const pidAt = parts.findIndex((p) => 'placeholder' in p && p.placeholder === 'pid');
  const before = parts[pidAt - 1];
  const after = parts[pidAt + 1];
  if ((before && 'literal' in before && /\d$/.test(before.literal)) || (after && 'literal' in after && /^\d/.test(after.literal))) {
    throw new UsageError(
      `${flag} ${JSON.stringify(template)} puts a digit beside {pid}, so a name could be read with more than one PID and run key.`,
      'Separate {pid} from digits with another character, e.g. {date}.{pid}.csv.',
    );
  }
}

/** The whole-name pattern of a staging template, {date} matching `datePattern`. */
function stagingPattern(parts: readonly Part[], datePattern: string): RegExp {
  const spell = (p: Part): string => {
    if ('literal' in p) return escapeRegExp(p.literal);
    if (p.placeholder === 'date') return `(?<date>${datePattern})`;
    // Only what a writer prints for its PID: no leading zero, no 0, at
    // most MAX_PID (seven digits here, the value in stagingNameOf). A
    // "2026-04-24.007.csv" is someone's numbered copy, and
    // "K.20260425.csv" a dated file, not staging files.
    if (p.placeholder === 'pid') return '(?<pid>[1-9][0-9]{0,6})';
    return `(?<host>${HOST_PATTERN})`;
  };
  return new RegExp(`^${parts.map(spell).join('')}$`, 's');
}

/** A match of a staging pattern as a staging name, or undefined when its key or PID cannot be one. */
function stagingNameOf(
  match: RegExpExecArray | null,
  keySeparator: KeySeparator | undefined,
  runKey?: string,
): StagingName | undefined {
  const groups = match?.groups;
  if (!groups) return undefined;
  const key = runKey ?? groups.date;
  if (key === undefined || groups.pid === undefined) return undefined;
  if (keySeparator !== undefined && key.includes(keySeparator.text)) return undefined;
  const pid = Number(groups.pid);
  if (pid > MAX_PID) return undefined;
  return { runKey: key, pid, host: groups.host };
}

/**
 * Refuses a run key that holds the literal between {date} and {host} (see
 * keySeparatorOf). The hint's template changes that one literal and nothing
 * else, so it still names the job's files.
 */
function refuseKeyHoldingSeparator(
  runKey: string,
  keySeparator: KeySeparator | undefined,
  parts: readonly Part[],
  template: string,
  flag: string,
): void {
  if (keySeparator === undefined || !runKey.includes(keySeparator.text)) return;
  const separator = JSON.stringify(keySeparator.text);
  const suggested = parts
    .map((p, i) => (i === keySeparator.at ? '@' : 'literal' in p ? p.literal : `{${p.placeholder}}`))
    .join('');
  throw new UsageError(
    `The run key ${JSON.stringify(runKey)} contains ${separator}, which ${flag} ${JSON.stringify(template)} also puts between the key and the host: a file name could belong to two run keys.`,
    `Use a run key without ${separator}, or a separator no host name holds, e.g. ${JSON.stringify(suggested)}.`,
  );
}

/** The literal text every staging name for `runKey` starts with: the leading literal, the key if {date} is next. */
function stagingPrefixFor(parts: readonly Part[], runKey: string): string {
  const first = parts[0];
  const leading = first && 'literal' in first ? first.literal : '';
  let prefix = leading;
  const second = parts[leading ? 1 : 0];
  if (second && 'placeholder' in second && second.placeholder === 'date') {
    prefix += runKey;
    const third = parts[leading ? 2 : 1];
    if (third && 'literal' in third) prefix += third.literal;
  }
  return prefix;
}

export function compileStagingTemplate(template: string, flag = '--staging'): StagingTemplate {
  const parts = parseTemplate(template, flag, ['date', 'pid', 'host']);
  checkStagingParts(parts, template, flag);
  const keySeparator = keySeparatorOf(parts);
  const anyKey = stagingPattern(parts, '.+?');
  const firstPart = parts[0];
  const leading = firstPart && 'literal' in firstPart ? firstPart.literal : '';
  const lastPart = parts.at(-1);
  const trailing = lastPart && 'literal' in lastPart ? lastPart.literal : '';
  checkFileName(substitute(parts, { date: 'x', pid: '1', host: 'h' }), flag);
  return {
    source: template,
    matcherFor(runKey) {
      refuseKeyHoldingSeparator(runKey, keySeparator, parts, template, flag);
      const pattern = stagingPattern(parts, escapeRegExp(runKey));
      const prefix = stagingPrefixFor(parts, runKey);
      return (name) => (name.startsWith(prefix) ? stagingNameOf(pattern.exec(name), keySeparator, runKey) : undefined);
    },
    // The literal ends first: in a staging directory of a million leftovers
    // most names fail there, without running the regular expression.
    matchAny: (name) =>
      name.startsWith(leading) && name.endsWith(trailing) ? stagingNameOf(anyKey.exec(name), keySeparator) : undefined,
    prefixFor: (runKey) => stagingPrefixFor(parts, runKey),
  };
}

/**
 * The run whose published output or marker `name` is, if any (`''` for a
 * fixed name, which every run shares). Where staging and output share a
 * directory, such a name is never an orphan, even if it also fits the staging
 * template ({date}.csv and {date}.{pid}.csv overlap).
 */
export function publishedRunOf(final: FinalTemplate, marker: MarkerTemplate | null, name: string): string | undefined {
  if (!final.keyed) {
    const fixed = final.nameFor('');
    if (name === fixed || (marker && name === marker.nameFor('', fixed))) return '';
  }
  return final.runKeyOf(name) ?? marker?.runKeyOf(name, final);
}
