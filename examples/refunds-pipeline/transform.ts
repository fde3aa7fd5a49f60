import { formatSettlements, parseRefunds, type Refund, type Settlement } from './csv.js';

/**
 * The Transform step: the settled refunds of one run date, totalled per
 * account and currency. Pure: the same input text and date always give the
 * same bytes, which is what makes a re-run pinned to the run key safe.
 */
export function settleRefunds(refunds: readonly Refund[], runDate: string): Settlement[] {
  const totals = new Map<string, Settlement>();
  for (const r of refunds) {
    if (r.refundDate !== runDate || r.status !== 'settled') continue;
    const key = `${r.accountId},${r.currency}`;
    const entry = totals.get(key);
    if (entry) {
      entry.refunds += 1;
      entry.totalCents += r.amountCents;
    } else {
      totals.set(key, {
        accountId: r.accountId,
        currency: r.currency,
        refunds: 1,
        totalCents: r.amountCents,
      });
    }
  }
  // Code-unit order, not localeCompare: the output must not depend on the
  // locale of the machine that happens to run the job.
  return [...totals.values()].sort((a, b) =>
    a.accountId === b.accountId ? compare(a.currency, b.currency) : compare(a.accountId, b.accountId),
  );
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Input CSV text → output CSV text for one run date. */
export function settleRefundsCsv(inputText: string, runDate: string): string {
  return formatSettlements(settleRefunds(parseRefunds(inputText), runDate));
}
