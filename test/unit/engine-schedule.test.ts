import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { plannedModelCalls, tokensToCommit } from '../../server/engine/schedule';

/** The commits per step of a row that commits exactly what the schedule says. */
function simulate(masked: number, steps: number): number[] {
  const perStep: number[] = [];
  for (let step = 0; step < steps && masked > 0; step++) {
    const n = tokensToCommit(masked, step, steps);
    perStep.push(n);
    masked -= n;
  }
  return perStep;
}

describe('the tokens-per-step schedule', () => {
  const cases: [number, number, number[]][] = [
    [16, 8, [2, 2, 2, 2, 2, 2, 2, 2]],
    [32, 8, [4, 4, 4, 4, 4, 4, 4, 4]],
    [10, 4, [2, 2, 3, 3]],
    [16, 1, [16]],
    [8, 16, [1, 1, 1, 1, 1, 1, 1, 1]],
    [5, 5, [1, 1, 1, 1, 1]],
    [7, 3, [2, 2, 3]],
  ];
  for (const [masked, steps, expected] of cases) {
    it(`commits ${masked} masks in ${steps} steps as ${expected.join(', ')}`, () => {
      assert.deepEqual(simulate(masked, steps), expected);
    });
  }

  it('resolves every mask in exactly min(steps, masks) steps with at least one commit per step', () => {
    for (let masked = 1; masked <= 64; masked++) {
      for (let steps = 1; steps <= 40; steps++) {
        const perStep = simulate(masked, steps);
        assert.equal(perStep.reduce((a, b) => a + b, 0), masked);
        assert.equal(perStep.length, plannedModelCalls(masked, steps));
        assert.ok(perStep.every((n) => n >= 1));
      }
    }
  });

  it('commits nothing when nothing is masked', () => {
    assert.equal(tokensToCommit(0, 0, 8), 0);
  });
});
