/** One sample line of the Prometheus text format, read back. */
export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PromText {
  readonly help: ReadonlyMap<string, string>;
  readonly type: ReadonlyMap<string, string>;
  readonly samples: readonly PromSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;

function unescapeLabel(text: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const match = LABEL.exec(text);
    if (!match) throw new Error(`bad labels in ${JSON.stringify(line)}`);
    const [, key = '', value = ''] = match;
    if (key in labels) throw new Error(`label ${key} twice in ${JSON.stringify(line)}`);
    labels[key] = unescapeLabel(value);
  }
  return labels;
}

/**
 * A strict reader of the exposition format as node_exporter's textfile
 * collector takes it: every sample's metric has its # HELP and # TYPE before
 * the first sample, each at most once; a line that is none of the three is an
 * error, not something to skip.
 */
export function parsePrometheusText(text: string): PromText {
  if (!text.endsWith('\n')) throw new Error('the text does not end with a newline');
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: PromSample[] = [];
  const seen = new Set<string>();
  for (const line of text.slice(0, -1).split('\n')) {
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (comment) {
      const [, kind, name = '', rest = ''] = comment;
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name ${name}`);
      const map = kind === 'HELP' ? help : type;
      if (map.has(name)) throw new Error(`# ${kind} ${name} twice`);
      if (seen.has(name)) throw new Error(`# ${kind} ${name} after its samples`);
      map.set(name, rest);
      continue;
    }
    // Any other comment is allowed by the format, and ignored.
    if (line.startsWith('# ') && !/^# (HELP|TYPE) /.test(line)) continue;
    const sample = SAMPLE.exec(line);
    if (!sample) throw new Error(`not a Prometheus text line: ${JSON.stringify(line)}`);
    const [, name = '', labelText, valueText = ''] = sample;
    if (!help.has(name) || !type.has(name))
      throw new Error(`${name} has a sample before its # HELP and # TYPE`);
    const value = Number(valueText);
    if (valueText === '' || Number.isNaN(value)) throw new Error(`bad value in ${JSON.stringify(line)}`);
    seen.add(name);
    samples.push({ name, labels: labelText === undefined ? {} : parseLabels(labelText, line), value });
  }
  const keys = samples.map((s) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`);
  if (new Set(keys).size !== keys.length) throw new Error('a series appears twice');
  return { help, type, samples };
}

/** The samples of one metric, optionally only those whose labels include `where`. */
export function samplesOf(
  parsed: PromText,
  name: string,
  where: Readonly<Record<string, string>> = {},
): PromSample[] {
  return parsed.samples.filter(
    (s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v),
  );
}

/** The value of the one sample of `name` matching `where`; throws unless there is exactly one. */
export function sampleValue(
  parsed: PromText,
  name: string,
  where: Readonly<Record<string, string>> = {},
): number {
  const found = samplesOf(parsed, name, where);
  if (found.length !== 1 || !found[0]) {
    throw new Error(`${found.length} samples of ${name} ${JSON.stringify(where)}`);
  }
  return found[0].value;
}
