import { INPUT_HEADER } from './csv.js';
import { createRandom } from './random.js';

export interface InputOptions {
  /** Any string or number; the same (seed, runDate, rows) always gives the same bytes. */
  seed: string | number;
  /** YYYY-MM-DD: the run key the input is meant for. */
  runDate: string;
  rows?: number;
}

const STATUSES = ['settled', 'settled', 'settled', 'settled', 'settled', 'pending', 'failed', 'reversed'];
const CURRENCIES = ['EUR', 'USD', 'GBP'];
const ACCOUNTS = 400;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * A refunds extract as an upstream system would hand it over: mostly rows for
 * the run date, plus the day before and after (late and early arrivals) and
 * statuses the settlement must skip, so the transform has real work to do.
 */
export function generateRefundsCsv({ seed, runDate, rows = 3000 }: InputOptions): string {
  if (!DATE.test(runDate) || Number.isNaN(Date.parse(`${runDate}T00:00:00Z`))) {
    throw new RangeError(`run date "${runDate}" is not a YYYY-MM-DD date`);
  }
  const random = createRandom(`${seed}/${runDate}/${rows}`);
  const dates = [shiftDate(runDate, -1), runDate, runDate, runDate, shiftDate(runDate, 1)];
  const lines = [INPUT_HEADER.join(',')];
  for (let i = 0; i < rows; i++) {
    const refundId = `rf-${runDate.replaceAll('-', '')}-${String(i).padStart(6, '0')}`;
    const account = `acct-${String(random.int(1, ACCOUNTS)).padStart(4, '0')}`;
    const amountCents = random.int(100, 250_000);
    lines.push(
      [
        refundId,
        account,
        random.pick(dates),
        random.pick(STATUSES),
        random.pick(CURRENCIES),
        amountCents,
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

function shiftDate(date: string, days: number): string {
  const t = Date.parse(`${date}T00:00:00Z`) + days * 86_400_000;
  return new Date(t).toISOString().slice(0, 10);
}
