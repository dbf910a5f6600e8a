import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BudgetReserve } from '../../server/protocol/budget-reserve';

describe('the latency budget reserve', () => {
  it('gives the engine the whole budget until it has seen a request', () => {
    assert.equal(new BudgetReserve().engineBudgetMs(60), 60);
  });

  it('keeps a moving average of the time after generation off the engine\'s share', () => {
    const reserve = new BudgetReserve();
    reserve.observe(10);
    assert.equal(reserve.engineBudgetMs(60), 50);
    reserve.observe(20); // 0.3 x 20 + 0.7 x 10 = 13
    assert.equal(reserve.engineBudgetMs(60), 47);
    reserve.observe(Number.NaN);
    reserve.observe(-5);
    assert.equal(reserve.engineBudgetMs(60), 47, 'nonsense observations are ignored');
  });

  it('leaves the engine at least half the budget, and no budget stays no budget', () => {
    const reserve = new BudgetReserve();
    reserve.observe(500); // a grammar's first load
    assert.equal(reserve.engineBudgetMs(60), 30);
    assert.equal(reserve.engineBudgetMs(0), 0);
  });
});
