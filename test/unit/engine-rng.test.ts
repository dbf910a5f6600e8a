import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng, deriveSeed, Mulberry32 } from '../../server/engine/rng';

const draw = (rng: { next(): number }, n: number): number[] => Array.from({ length: n }, () => rng.next());

describe('the seeded random generator', () => {
  it('repeats the same sequence for the same seed and stream', () => {
    assert.deepEqual(draw(createRng(42, 3), 100), draw(createRng(42, 3), 100));
  });

  it('gives different sequences to different streams of one seed and to different seeds', () => {
    assert.notDeepEqual(draw(createRng(42, 0), 10), draw(createRng(42, 1), 10));
    assert.notDeepEqual(draw(createRng(42, 0), 10), draw(createRng(43, 0), 10));
  });

  it('returns floats in [0, 1) whose mean is close to one half', () => {
    const values = draw(new Mulberry32(7), 20000);
    assert.ok(values.every((v) => v >= 0 && v < 1));
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
  });

  it('derives uint32 seeds and treats a non-finite seed as 0', () => {
    const seed = deriveSeed(123, 5);
    assert.ok(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32);
    assert.deepEqual(draw(createRng(Number.NaN), 5), draw(createRng(0), 5));
  });
});
