import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ARNESS_MAX_K, arnessProfile, decodingOrder, globalArness, localArness } from '../../server/engine/arness';

interface ArnessCase {
  readonly name: string;
  readonly steps: number[][];
  readonly order: number[];
  readonly local: (number | null)[];
  readonly global: (number | null)[];
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'arness-cases.json'), 'utf8')) as {
  maxK: number;
  conventions: { tolerance: number };
  cases: ArnessCase[];
};

/** Commits as the sampler records them: per step, in any order within the step. */
const commitsOf = (steps: number[][]): { position: number; step: number }[] =>
  steps.flatMap((positions, step) => positions.map((position) => ({ position, step })));

function assertClose(actual: number[], expected: (number | null)[], what: string): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((value, i) => {
    const want = expected[i];
    if (want === null) assert.ok(Number.isNaN(value), `${what}@${i + 1}: expected undefined (NaN), got ${value}`);
    else assert.ok(Math.abs(value - want) <= fixture.conventions.tolerance, `${what}@${i + 1}: expected ${want}, got ${value}`);
  });
}

describe('AR-ness of a decoding order (shared fixture test/fixtures/arness-cases.json)', () => {
  it('covers k = 1..8', () => {
    assert.equal(fixture.maxK, ARNESS_MAX_K);
  });

  for (const testCase of fixture.cases) {
    it(`matches the expected values for "${testCase.name}"`, () => {
      const order = decodingOrder(commitsOf(testCase.steps));
      assert.deepEqual(order, testCase.order);
      const profile = arnessProfile(order);
      assertClose(profile.local, testCase.local, 'local');
      assertClose(profile.global, testCase.global, 'global');
    });
  }
});

describe('AR-ness details', () => {
  it('scores pure left-to-right decoding 1 on both measures for every k it can measure', () => {
    const order = Array.from({ length: 32 }, (_, i) => i);
    for (let k = 1; k <= 8; k++) {
      assert.equal(localArness(order, k), 1);
      assert.equal(globalArness(order, k), 1);
    }
  });

  it('reads several tokens committed in one step from left to right', () => {
    assert.deepEqual(decodingOrder([{ position: 9, step: 1 }, { position: 5, step: 0 }, { position: 2, step: 0 }, { position: 4, step: 1 }]), [2, 5, 4, 9]);
  });

  it('refuses an order that lists a position twice', () => {
    assert.throws(() => arnessProfile([1, 2, 1]), RangeError);
  });
});
