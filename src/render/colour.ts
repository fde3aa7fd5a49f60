import { Chalk, type ChalkInstance } from 'chalk';

/**
 * Colour only for a person at a terminal. chalk's own detection ignores
 * NO_COLOR, so the decision is made here, from the stream we write to.
 */
export function chalkFor(
  stream: { readonly isTTY?: boolean },
  env: Readonly<Record<string, string | undefined>>,
): ChalkInstance {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  // FORCE_COLOR=0 (or false) turns colour off, as it does for node and chalk,
  // even at a terminal.
  const forcedOff = env.FORCE_COLOR === '0' || env.FORCE_COLOR === 'false';
  const forced = env.FORCE_COLOR !== undefined && !forcedOff;
  if (noColor || forcedOff) return new Chalk({ level: 0 });
  if (forced) return new Chalk({ level: 1 });
  if (!stream.isTTY || env.TERM === 'dumb') return new Chalk({ level: 0 });
  const rich = env.COLORTERM === 'truecolor' || env.COLORTERM === '24bit' || /256/.test(env.TERM ?? '');
  return new Chalk({ level: rich ? 2 : 1 });
}
