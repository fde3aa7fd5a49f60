import type { ChalkInstance } from 'chalk';
import Table from 'cli-table3';
import { tableOptions } from './format.js';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

/** Columns a string takes on a terminal (colour codes take none). */
export function visibleLength(text: string): number {
  return [...text.replace(ANSI, '')].length;
}

/**
 * Shortens text to `max` columns by cutting its middle: a path keeps its root
 * and its file name, the two parts that tell paths apart.
 */
export function shortenMiddle(text: string, max: number): string {
  const chars = [...text];
  if (chars.length <= max) return text;
  if (max <= 1) return '…'.slice(0, max);
  const head = Math.ceil((max - 1) / 2);
  const tail = max - 1 - head;
  return `${chars.slice(0, head).join('')}…${tail > 0 ? chars.slice(-tail).join('') : ''}`;
}

/** Breaks text into lines of at most `width` columns at spaces; a longer word is cut. */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(' ')) {
      let rest = word;
      while ([...rest].length > width) {
        if (line !== '') {
          lines.push(line);
          line = '';
        }
        lines.push([...rest].slice(0, width).join(''));
        rest = [...rest].slice(width).join('');
      }
      if (line === '') line = rest;
      else if ([...line].length + 1 + [...rest].length <= width) line += ` ${rest}`;
      else {
        lines.push(line);
        line = rest;
      }
    }
    lines.push(line);
  }
  return lines;
}

/** A paragraph wrapped to the terminal, every line indented; as it is when the width is unknown. */
export function wrapIndented(text: string, width: number | undefined, indent: string, hanging = indent): string {
  if (width === undefined) return `${indent}${text}`;
  const lines = wrapWords(text, Math.max(20, width - hanging.length));
  return lines.map((line, i) => `${i === 0 ? indent : hanging}${line}`).join('\n');
}

export interface Column {
  readonly head: string;
  /** How the column gives way when the table is too wide: never, by cutting its middle, or by wrapping. */
  readonly shrink?: 'middle' | 'wrap';
  /** It goes first when even shrunk columns do not fit. Lower drops earlier. */
  readonly dropOrder?: number;
  readonly min?: number;
}

/** A cell: text, and the colour to paint it in once it is cut to size. */
export type Cell = string | { readonly text: string; readonly style: (text: string) => string };

const textOf = (cell: Cell) => (typeof cell === 'string' ? cell : cell.text);
const lineWidth = (cell: string) => Math.max(0, ...cell.split('\n').map(visibleLength));

/**
 * A table no wider than `width`: optional columns are dropped, then paths are
 * shortened in their middle and long text is wrapped, so the borders never
 * break. With no width (output to a file or a pipe), nothing is cut.
 */
export function fitTable(
  columns: readonly Column[],
  rows: readonly (readonly Cell[])[],
  chalk: ChalkInstance,
  width: number | undefined,
): string {
  let shown = columns.map((_, i) => i);
  const natural = (i: number) =>
    Math.max(lineWidth((columns[i] as Column).head), ...rows.map((r) => lineWidth(textOf(r[i] ?? ''))));
  const widths = new Map(columns.map((_, i) => [i, natural(i)]));
  // cli-table3: one space each side of a cell, and a border between and around cells.
  const total = () => shown.reduce((n, i) => n + (widths.get(i) as number) + 3, 1);
  const minOf = (i: number) => {
    const column = columns[i] as Column;
    return column.shrink ? Math.min(natural(i), column.min ?? 8) : natural(i);
  };
  if (width !== undefined) {
    const droppable = shown
      .filter((i) => columns[i]?.dropOrder !== undefined)
      .sort((a, b) => (columns[a]?.dropOrder as number) - (columns[b]?.dropOrder as number));
    const fitsShrunk = () => shown.reduce((n, i) => n + minOf(i) + 3, 1) <= width;
    while (!fitsShrunk() && droppable.length > 0) {
      const dropped = droppable.shift() as number;
      shown = shown.filter((i) => i !== dropped);
    }
    while (total() > width) {
      const candidates = shown.filter((i) => (widths.get(i) as number) > minOf(i));
      if (candidates.length === 0) break;
      const widest = candidates.reduce((a, b) => ((widths.get(b) as number) > (widths.get(a) as number) ? b : a));
      widths.set(widest, (widths.get(widest) as number) - 1);
    }
  }
  const fit = (cell: Cell, i: number): string => {
    const column = columns[i] as Column;
    const max = widths.get(i) as number;
    const text = textOf(cell);
    const style = typeof cell === 'string' ? (s: string) => s : cell.style;
    if (lineWidth(text) <= max) return style(text);
    const lines = column.shrink === 'wrap' ? wrapWords(text, max) : text.split('\n').map((l) => shortenMiddle(l, max));
    return lines.map(style).join('\n');
  };
  const table = new Table({
    head: shown.map((i) => fit((columns[i] as Column).head, i)),
    colWidths: shown.map((i) => (widths.get(i) as number) + 2),
    wordWrap: false,
    ...tableOptions(chalk),
  });
  for (const row of rows) table.push(shown.map((i) => fit(row[i] ?? '', i)));
  return table.toString();
}
