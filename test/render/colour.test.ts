import { describe, expect, it } from 'vitest';
import { chalkFor } from '../../src/render/colour.js';

const tty = { write: () => true, isTTY: true };
const pipe = { write: () => true, isTTY: false };

describe('chalkFor', () => {
  it.each([
    ['a pipe', pipe, {}, 0],
    ['a terminal', tty, { TERM: 'xterm' }, 1],
    ['a 256-colour terminal', tty, { TERM: 'xterm-256color' }, 2],
    ['a dumb terminal', tty, { TERM: 'dumb' }, 0],
    ['NO_COLOR at a terminal', tty, { NO_COLOR: '1', TERM: 'xterm' }, 0],
    ['an empty NO_COLOR, which does not count', tty, { NO_COLOR: '', TERM: 'xterm' }, 1],
    ['NO_COLOR over FORCE_COLOR', tty, { NO_COLOR: '1', FORCE_COLOR: '1' }, 0],
    ['FORCE_COLOR into a pipe', pipe, { FORCE_COLOR: '1' }, 1],
    ['FORCE_COLOR=0 at a terminal', tty, { FORCE_COLOR: '0', TERM: 'xterm' }, 0],
    ['FORCE_COLOR=false at a terminal', tty, { FORCE_COLOR: 'false', TERM: 'xterm' }, 0],
  ])('%s: colour level %d', (_, stream, env, level) => {
    expect(chalkFor(stream, env as Record<string, string>).level).toBe(level);
  });
});
