import type { ChalkInstance } from 'chalk';

/** The house table look: bold head and grey rules at a terminal, no rule between rows. */
export function tableOptions(chalk: ChalkInstance) {
  return {
    style: { head: chalk.level > 0 ? ['bold'] : [], border: chalk.level > 0 ? ['grey'] : [] },
    chars: { 'mid': '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  };
}

/** Byte counts for people: 1023 B, 12.3 KiB, 4.0 MiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** "1 file", "2 files": a count with its noun. */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}
