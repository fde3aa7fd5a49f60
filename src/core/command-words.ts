import { UsageError } from './errors.js';

/**
 * Splits a command line into words the way a POSIX shell groups them (single
 * quotes, double quotes, backslashes), and does nothing else: no variables, no
 * globs, no pipes. The words are then run without a shell, so a run key or
 * template can never inject a command.
 */
export function splitCommandWords(text: string, flag = '--rerun'): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const fail = (what: string): never => {
    throw new UsageError(`${flag} ${JSON.stringify(text)} has ${what}.`);
  };
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch === '\'') {
      const end = text.indexOf('\'', i + 1);
      if (end < 0) fail('an unclosed single quote');
      word += text.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (ch === '"') {
      i++;
      inWord = true;
      for (;;) {
        if (i >= text.length) fail('an unclosed double quote');
        const c = text[i] as string;
        if (c === '"') break;
        if (c === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1] as string)) {
          word += text[i + 1];
          i += 2;
        } else {
          word += c;
          i++;
        }
      }
      i++;
    } else if (ch === '\\') {
      if (i + 1 >= text.length) fail('a trailing backslash');
      word += text[i + 1];
      inWord = true;
      i += 2;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else {
      word += ch;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  if (words.length === 0) fail('no command in it');
  return words;
}

/** Checks a re-run command is pinned to the run key. */
export function checkRerunWords(words: readonly string[], flag = '--rerun'): readonly string[] {
  if (words.length === 0) throw new UsageError(`${flag} is empty.`);
  if (!words.some((w) => w.includes('{date}'))) {
    throw new UsageError(
      `${flag} does not mention {date}, so the re-run would not be pinned to the run key.`,
      'Write where the run key goes, e.g. --rerun \'node job.js --date {date}\'.',
    );
  }
  return words;
}

/** The re-run's argv for one run key: each `{date}` replaced, each word still one argument. */
export function rerunArgv(words: readonly string[], runKey: string): string[] {
  return words.map((w) => w.replaceAll('{date}', runKey));
}

/** Quotes a word for a POSIX shell, so printed commands can be pasted as they are. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll('\'', `'\\''`)}'`;
}

export function shellJoin(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}
