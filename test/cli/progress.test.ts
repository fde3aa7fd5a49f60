import { describe, expect, it } from 'vitest';
import { progressLine } from '../../src/cli/progress.js';

/** A stderr that records what was written, and a clock the test moves by hand. */
function harness(isTTY: boolean) {
  const written: string[] = [];
  let now = 1_000_000;
  const io = { stderr: { isTTY, write: (chunk: string) => written.push(chunk) }, now: () => now };
  return { written, io, advance: (ms: number) => (now += ms) };
}

describe('progressLine', () => {
  it('says nothing during the first two seconds, then entries looked at and the rate', () => {
    const { written, io, advance } = harness(true);
    const line = progressLine(io, 'scan');
    advance(1999);
    line.update(200_000);
    expect(written).toEqual([]);
    advance(2001);
    line.update(400_000);
    expect(written).toEqual(['\r\x1b[Kscan: 400,000 entries looked at, 100,000/s']);
    line.done();
    expect(written.at(-1)).toBe('\r\x1b[K');
  });

  it('redraws at most every quarter second, not once per batch of entries', () => {
    const { written, io, advance } = harness(true);
    const line = progressLine(io, 'clean');
    advance(3000);
    for (let i = 1; i <= 10; i++) {
      line.update(i * 256);
      advance(10);
    }
    expect(written).toHaveLength(1);
    advance(250);
    line.update(5000);
    expect(written).toHaveLength(2);
  });

  it('writes nothing at all when stderr is not a terminal (a pipe, a log file, cron)', () => {
    const { written, io, advance } = harness(false);
    const line = progressLine(io, 'scan');
    advance(60_000);
    line.update(1_000_000);
    line.done();
    expect(written).toEqual([]);
  });

  it('leaves nothing to clear when the run was quick', () => {
    const { written, io } = harness(true);
    const line = progressLine(io, 'scan');
    line.update(10);
    line.done();
    expect(written).toEqual([]);
  });
});
