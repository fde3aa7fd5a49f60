import { describe, expect, it } from 'vitest';
import { parseRefunds } from '../../examples/refunds-pipeline/csv.js';
import { generateRefundsCsv } from '../../examples/refunds-pipeline/generate-input.js';
import { createRandom } from '../../examples/refunds-pipeline/random.js';

describe('generateRefundsCsv', () => {
  it('gives the same bytes for the same seed and run date', () => {
    const a = generateRefundsCsv({ seed: 7, runDate: '2026-04-24' });
    expect(generateRefundsCsv({ seed: 7, runDate: '2026-04-24' })).toBe(a);
    expect(generateRefundsCsv({ seed: '7', runDate: '2026-04-24' })).toBe(a);
  });

  it('gives different inputs for other seeds and run dates', () => {
    const a = generateRefundsCsv({ seed: 7, runDate: '2026-04-24' });
    expect(generateRefundsCsv({ seed: 8, runDate: '2026-04-24' })).not.toBe(a);
    expect(generateRefundsCsv({ seed: 7, runDate: '2026-04-25' })).not.toBe(a);
  });

  it('mixes in rows the settlement must skip: other dates and unsettled statuses', () => {
    const refunds = parseRefunds(generateRefundsCsv({ seed: 1, runDate: '2026-03-01' }));
    expect(refunds).toHaveLength(3000);
    expect(new Set(refunds.map((r) => r.refundDate))).toEqual(
      new Set(['2026-02-28', '2026-03-01', '2026-03-02']),
    );
    expect(new Set(refunds.map((r) => r.status))).toEqual(
      new Set(['settled', 'pending', 'failed', 'reversed']),
    );
    expect(new Set(refunds.map((r) => r.refundId)).size).toBe(3000);
  });

  it('honours the row count and rejects a run date that is not a date', () => {
    expect(parseRefunds(generateRefundsCsv({ seed: 1, runDate: '2026-04-24', rows: 10 }))).toHaveLength(10);
    expect(() => generateRefundsCsv({ seed: 1, runDate: '2026-13-45' })).toThrow(RangeError);
    expect(() => generateRefundsCsv({ seed: 1, runDate: 'yesterday' })).toThrow(RangeError);
  });
});

describe('createRandom', () => {
  it('replays the same sequence for the same seed, within its bounds', () => {
    const a = createRandom('s');
    const b = createRandom('s');
    const xs = Array.from({ length: 1000 }, () => a.int(3, 5));
    expect(Array.from({ length: 1000 }, () => b.int(3, 5))).toEqual(xs);
    expect(new Set(xs)).toEqual(new Set([3, 4, 5]));
  });
});
