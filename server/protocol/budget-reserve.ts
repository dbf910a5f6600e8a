/**
 * The share of unmask.latencyBudgetMs the engine gets. The budget is for the whole request, but after the generation
 * the server still checks the candidates' syntax and ranks them (10 to 30 ms on this project's busy 2-core CPU), so a
 * moving average of that time is kept off the engine's share: the answer, not only the generation, is due on time.
 * The engine keeps at least half the budget, so that one slow check (a grammar's first load) cannot leave it nothing.
 */

/** Weight of the newest observation: the time after generation changes with load and language, not per request. */
const WEIGHT = 0.3;

export class BudgetReserve {
  private afterMs: number | undefined;

  /** An inline request made as you type spent `ms` outside the engine after its generation. */
  observe(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    this.afterMs = this.afterMs === undefined ? ms : WEIGHT * ms + (1 - WEIGHT) * this.afterMs;
  }

  /** The engine's latency budget for a request whose whole budget is `budgetMs` (0: none, and none for the engine). */
  engineBudgetMs(budgetMs: number): number {
    if (budgetMs <= 0) return 0;
    return Math.max(budgetMs / 2, budgetMs - (this.afterMs ?? 0));
  }
}
