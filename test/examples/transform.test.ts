import { describe, expect, it } from 'vitest';
import { CsvError, parseRefunds, type Refund } from '../../examples/refunds-pipeline/csv.js';
import { generateRefundsCsv } from '../../examples/refunds-pipeline/generate-input.js';
import { settleRefunds, settleRefundsCsv } from '../../examples/refunds-pipeline/transform.js';

const HEADER = 'refund_id,account_id,refund_date,status,currency,amount_cents';

function refund(
  accountId: string,
  refundDate: string,
  status: string,
  currency: string,
  amountCents: number,
): Refund {
  return { refundId: `rf-${accountId}-${amountCents}`, accountId, refundDate, status, currency, amountCents };
}

describe('settleRefunds', () => {
  it('totals only the settled refunds of the run date, per account and currency', () => {
    const refunds = [
      refund('acct-2', '2026-04-24', 'settled', 'EUR', 100),
      refund('acct-1', '2026-04-24', 'settled', 'USD', 250),
      refund('acct-2', '2026-04-24', 'settled', 'EUR', 50),
      refund('acct-2', '2026-04-24', 'pending', 'EUR', 999),
      refund('acct-2', '2026-04-23', 'settled', 'EUR', 999),
      refund('acct-1', '2026-04-24', 'settled', 'EUR', 7),
    ];
    expect(settleRefunds(refunds, '2026-04-24')).toEqual([
      { accountId: 'acct-1', currency: 'EUR', refunds: 1, totalCents: 7 },
      { accountId: 'acct-1', currency: 'USD', refunds: 1, totalCents: 250 },
      { accountId: 'acct-2', currency: 'EUR', refunds: 2, totalCents: 150 },
    ]);
  });

  it('sorts by code unit, whatever the locale', () => {
    const refunds = [
      refund('acct-a', '2026-04-24', 'settled', 'EUR', 1),
      refund('acct-B', '2026-04-24', 'settled', 'EUR', 1),
      refund('acct-é', '2026-04-24', 'settled', 'EUR', 1),
    ];
    expect(settleRefunds(refunds, '2026-04-24').map((s) => s.accountId)).toEqual([
      'acct-B',
      'acct-a',
      'acct-é',
    ]);
  });

  it('gives a header-only file for a day without settled refunds', () => {
    expect(settleRefundsCsv(`${HEADER}\nrf-1,acct-1,2026-04-24,failed,EUR,10\n`, '2026-04-24')).toBe(
      'account_id,currency,refunds,total_cents\n',
    );
  });
});

describe('settleRefundsCsv', () => {
  const input = generateRefundsCsv({ seed: 'transform-test', runDate: '2026-04-24' });

  it('is pure: the same input and run date give the same bytes, in any order of rows', () => {
    const first = settleRefundsCsv(input, '2026-04-24');
    const [header, ...rows] = input.trimEnd().split('\n');
    const shuffled = `${[header, ...rows.reverse()].join('\n')}\n`;
    expect(settleRefundsCsv(input, '2026-04-24')).toBe(first);
    expect(settleRefundsCsv(shuffled, '2026-04-24')).toBe(first);
  });

  it('does not modify the parsed input', () => {
    const refunds = parseRefunds(input);
    const copy = structuredClone(refunds);
    settleRefunds(refunds, '2026-04-24');
    expect(refunds).toEqual(copy);
  });

  it('accounts for every settled cent of the run date and nothing else', () => {
    const refunds = parseRefunds(input);
    const expected = refunds
      .filter((r) => r.refundDate === '2026-04-24' && r.status === 'settled')
      .reduce((sum, r) => sum + r.amountCents, 0);
    const settled = settleRefunds(refunds, '2026-04-24');
    expect(settled.reduce((sum, s) => sum + s.totalCents, 0)).toBe(expected);
    expect(expected).toBeGreaterThan(0);
    expect(settled.length).toBeLessThan(refunds.length);
  });
});

describe('parseRefunds', () => {
  it.each([
    ['a wrong header', 'id,amount\n1,2\n', /line 1: expected the header/],
    ['a short line', `${HEADER}\nrf-1,acct-1,2026-04-24,settled,EUR\n`, /line 2: expected 6 fields, got 5/],
    [
      'a quoted field',
      `${HEADER}\nrf-1,"acct,1",2026-04-24,settled,EUR,1\n`,
      /line 2: expected 6 fields, got 7/,
    ],
    ['a decimal amount', `${HEADER}\nrf-1,acct-1,2026-04-24,settled,EUR,1.5\n`, /line 2: amount_cents "1.5"/],
  ])('rejects %s', (_name, text, message) => {
    expect(() => parseRefunds(text)).toThrow(CsvError);
    expect(() => parseRefunds(text)).toThrow(message);
  });
});
