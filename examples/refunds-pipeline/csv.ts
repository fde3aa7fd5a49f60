// The two CSV shapes of the settlement job. Fields never contain commas,
// quotes or newlines (ids, ISO dates, enum words, integers), so a line split
// is a complete parser; anything else is rejected rather than guessed at.

export const INPUT_HEADER = ['refund_id', 'account_id', 'refund_date', 'status', 'currency', 'amount_cents'];
export const OUTPUT_HEADER = ['account_id', 'currency', 'refunds', 'total_cents'];

export interface Refund {
  refundId: string;
  accountId: string;
  refundDate: string;
  status: string;
  currency: string;
  /** Integer cents: money never goes through floating point. */
  amountCents: number;
}

export interface Settlement {
  accountId: string;
  currency: string;
  refunds: number;
  totalCents: number;
}

export class CsvError extends Error {
  override name = 'CsvError';
}

const INTEGER = /^-?\d+$/;

export function parseRefunds(text: string): Refund[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const header = lines[0];
  if (header !== INPUT_HEADER.join(',')) {
    throw new CsvError(`line 1: expected the header "${INPUT_HEADER.join(',')}"`);
  }
  const refunds: Refund[] = [];
  for (let i = 1; i < lines.length; i++) {
    const fields = (lines[i] ?? '').split(',');
    const [refundId, accountId, refundDate, status, currency, amount] = fields;
    if (
      fields.length !== INPUT_HEADER.length
      || refundId === undefined
      || accountId === undefined
      || refundDate === undefined
      || status === undefined
      || currency === undefined
      || amount === undefined
    ) {
      throw new CsvError(`line ${i + 1}: expected ${INPUT_HEADER.length} fields, got ${fields.length}`);
    }
    if (!INTEGER.test(amount)) {
      throw new CsvError(`line ${i + 1}: amount_cents "${amount}" is not an integer`);
    }
    refunds.push({ refundId, accountId, refundDate, status, currency, amountCents: Number(amount) });
  }
  return refunds;
}

export function formatSettlements(settlements: readonly Settlement[]): string {
  const lines = [OUTPUT_HEADER.join(',')];
  for (const s of settlements) {
    lines.push(`${s.accountId},${s.currency},${s.refunds},${s.totalCents}`);
  }
  return `${lines.join('\n')}\n`;
}
