// Money spent and reserved per scope and budget period, in this process's memory (processes
// sharing a store keep them in Redis instead). A call reserves its worst-case cost before it
// runs and settles with the real cost after, so concurrent calls cannot all pass a check against
// the same remaining budget.

import type { BudgetKeeper, BudgetLine, BudgetRefusal, BudgetTicket, SpentLoader } from '../../store/coordination.js';
import type { BudgetPeriod } from './spec.js';

/** Start of the UTC day or month containing `now`, and the start of the next one. */
export function periodBounds(period: BudgetPeriod, now: number): { start: number; end: number } {
  const d = new Date(now);
  if (period === 'day') {
    const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    return { start, end: start + 86_400_000 };
  }
  return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}

export class BudgetAccount {
  /** Settled cost this period (seeded from the request log). */
  spent = 0;
  /** Reservations of calls still running. */
  reserved = 0;
  /** Resolves once the spend before this process started has been read. */
  ready: Promise<void> = Promise.resolve();

  constructor(readonly periodStart: number, readonly periodEnd: number) {}

  wouldExceed(amount: number, reservation: number): boolean {
    return this.spent + this.reserved + reservation > amount + 1e-12;
  }

  reserve(reservation: number): void {
    this.reserved += reservation;
  }

  settle(reservation: number, cost: number): void {
    this.reserved = Math.max(0, this.reserved - reservation);
    this.spent += cost;
  }
}

/** Budget accounts by scope and period; a new period starts a new account. */
export class BudgetLedger {
  private readonly accounts = new Map<string, BudgetAccount>();

  constructor(private readonly loadSpent: SpentLoader) {}

  /** The account for this period, its spend read from the log the first time it is used. */
  async account(scope: string, period: BudgetPeriod, now: number): Promise<BudgetAccount> {
    const { start, end } = periodBounds(period, now);
    const key = `${scope}|${period}`;
    let account = this.accounts.get(key);
    if (!account || account.periodStart !== start) {
      const created = new BudgetAccount(start, end);
      this.accounts.set(key, created);
      // Settles that land while the seed is read are added on top of it, not lost.
      created.ready = this.loadSpent(scope, start).then((spent) => {
        created.spent += spent;
      });
      account = created;
    }
    await account.ready;
    return account;
  }
}

interface LocalBudgetTicket extends BudgetTicket {
  readonly accounts: BudgetAccount[];
}

export class LocalBudgetKeeper implements BudgetKeeper {
  private readonly ledger: BudgetLedger;

  constructor(loadSpent: SpentLoader) {
    this.ledger = new BudgetLedger(loadSpent);
  }

  async reserve(lines: BudgetLine[], reservation: number): Promise<{ ticket: BudgetTicket } | { refused: BudgetRefusal }> {
    const now = Date.now();
    const accounts: BudgetAccount[] = [];
    for (const line of lines) accounts.push(await this.ledger.account(line.scope, line.period, now));
    // From the check to the reservations nothing awaits: they are one step.
    for (const [index, account] of accounts.entries()) {
      if (account.wouldExceed(lines[index]!.amount, reservation)) return { refused: { line: index, spent: account.spent, reserved: account.reserved } };
    }
    for (const account of accounts) account.reserve(reservation);
    const ticket: LocalBudgetTicket = { reservation, accounts };
    return { ticket };
  }

  settle(ticket: BudgetTicket, cost: number): void {
    for (const account of (ticket as LocalBudgetTicket).accounts) account.settle(ticket.reservation, cost);
  }
}
