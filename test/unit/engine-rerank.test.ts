import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_RERANK_WEIGHTS,
  isNearDuplicate,
  meanLogProb,
  rankCandidates,
  rerankScore,
  type RerankInputs,
  type RerankWeights,
} from '../../server/engine/rerank';

describe('the reranking score', () => {
  // [name, inputs, weights, fewest syntax errors among the candidates, expected score]
  const cases: [string, RerankInputs, RerankWeights, number, number][] = [
    ['is the mean log-probability per token by default', { logProb: -6, tokens: 3 }, DEFAULT_RERANK_WEIGHTS, 0, -2],
    ['adds the reward', { logProb: -6, tokens: 3, reward: 0.5 }, DEFAULT_RERANK_WEIGHTS, 0, -1.5],
    ['costs the syntax weight per syntax error', { logProb: -6, tokens: 3, syntaxErrors: 2 }, DEFAULT_RERANK_WEIGHTS, 0, -6],
    ['costs nothing when the file parses', { logProb: -6, tokens: 3, syntaxErrors: 0 }, DEFAULT_RERANK_WEIGHTS, 0, -2],
    ['counts only the errors beyond the best candidate', { logProb: -6, tokens: 3, syntaxErrors: 3 }, DEFAULT_RERANK_WEIGHTS, 2, -4],
    ['costs nothing without a parser', { logProb: -6, tokens: 3 }, DEFAULT_RERANK_WEIGHTS, 2, -2],
    ['weighs each term as asked', { logProb: -4, tokens: 2, reward: 1, syntaxErrors: 1 }, { likelihood: 0.5, reward: 3, syntax: 1 }, 0, 1],
    ['ignores the likelihood when its weight is 0, even without tokens', { logProb: 0, tokens: 0, reward: 2 }, { likelihood: 0, reward: 1, syntax: 1 }, 0, 2],
  ];
  for (const [name, inputs, weights, fewest, expected] of cases) {
    it(name, () => assert.equal(rerankScore(inputs, weights, fewest), expected));
  }

  it('ranks a candidate without tokens last', () => {
    assert.equal(meanLogProb({ logProb: 0, tokens: 0 }), -Infinity);
  });
});

describe('near-duplicates', () => {
  // [a, b, merged?]
  const cases: [string, string, boolean][] = [
    ['return x + 1', 'return x + 1', true],
    ['return x+1', 'return  x +\t1', true],
    ['if a:\n    b()', 'if a:\n        b()', true],
    ['return x', 'return y', false],
    ['x', 'y', false],
    // 25 and 26 characters without whitespace: one edit is within 5%, two are not.
    ['result = compute(items, key)', 'result = compute(items, keys)', true],
    ['result = compute(items, key)', 'result = compute(itemz, keys)', false],
    ['', '', true],
    ['', 'a', false],
  ];
  for (const [a, b, merged] of cases) {
    it(`${merged ? 'merge' : 'keep apart'} ${JSON.stringify(a)} and ${JSON.stringify(b)}`, () => {
      assert.equal(isNearDuplicate(a, b), merged);
      assert.equal(isNearDuplicate(b, a), merged, 'symmetric');
    });
  }

  it('keeps long texts that differ in many places apart, whatever their length', () => {
    const a = 'value_'.repeat(200);
    const b = 'valve_'.repeat(200);
    assert.equal(isNearDuplicate(a, b), false);
    assert.equal(isNearDuplicate(a, `${a}x`), true);
  });
});

describe('ranking candidates', () => {
  type C = RerankInputs & { text: string };
  const rank = (candidates: C[], weights?: RerankWeights) =>
    rankCandidates(candidates, weights).map((r) => ({ text: r.candidate.text, score: r.score, merged: r.merged }));

  // Each case: candidates in batch order -> texts in ranked order.
  const cases: [string, C[], string[]][] = [
    [
      'orders by likelihood when there is no parser',
      [
        { text: 'a', logProb: -3, tokens: 1 },
        { text: 'b', logProb: -1, tokens: 1 },
        { text: 'c', logProb: -2, tokens: 1 },
      ],
      ['b', 'c', 'a'],
    ],
    [
      'prefers a parsing candidate over a slightly likelier broken one',
      [
        { text: 'broken(', logProb: -1, tokens: 2, syntaxErrors: 1 },
        { text: 'ok()', logProb: -2, tokens: 2, syntaxErrors: 0 },
      ],
      ['ok()', 'broken('],
    ],
    [
      'keeps the likelier one first when the broken one is far likelier',
      [
        { text: 'broken(', logProb: -1, tokens: 2, syntaxErrors: 1 },
        { text: 'ok()', logProb: -10, tokens: 2, syntaxErrors: 0 },
      ],
      ['broken(', 'ok()'],
    ],
    [
      'does not hold errors that every candidate shares against any of them',
      [
        { text: 'a', logProb: -3, tokens: 1, syntaxErrors: 4 },
        { text: 'b', logProb: -1, tokens: 1, syntaxErrors: 4 },
      ],
      ['b', 'a'],
    ],
    [
      'normalises by length, so a long likely text beats a short unlikely one',
      [
        { text: 'short', logProb: -3, tokens: 1 },
        { text: 'long text here', logProb: -4, tokens: 8 },
      ],
      ['long text here', 'short'],
    ],
    [
      'keeps batch order for equal scores',
      [
        { text: 'first', logProb: -2, tokens: 2 },
        { text: 'second', logProb: -1, tokens: 1 },
      ],
      ['first', 'second'],
    ],
    [
      'merges near-duplicates into the best-ranked of them',
      [
        { text: 'return x+1', logProb: -4, tokens: 2, syntaxErrors: 0 },
        { text: 'return x + 1', logProb: -2, tokens: 2, syntaxErrors: 0 },
        { text: 'return y', logProb: -3, tokens: 2, syntaxErrors: 0 },
      ],
      ['return x + 1', 'return y'],
    ],
    [
      'keeps the variant that parses when near-duplicates differ in syntax',
      [
        { text: 'if a:\nb()', logProb: -1, tokens: 2, syntaxErrors: 1 },
        { text: 'if a:\n    b()', logProb: -1.5, tokens: 2, syntaxErrors: 0 },
      ],
      ['if a:\n    b()'],
    ],
    ['returns nothing for nothing', [], []],
  ];
  for (const [name, candidates, expected] of cases) {
    it(name, () => assert.deepEqual(rank(candidates).map((r) => r.text), expected));
  }

  it('reports each score and how many near-duplicates it absorbed', () => {
    const ranked = rank([
      { text: 'f(a)', logProb: -2, tokens: 2, syntaxErrors: 1 },
      { text: 'f( a )', logProb: -4, tokens: 2, syntaxErrors: 1 },
      { text: 'g(', logProb: -1, tokens: 1, syntaxErrors: 3 },
    ]);
    assert.deepEqual(ranked, [
      { text: 'f(a)', score: -1, merged: 1 },
      { text: 'g(', score: -5, merged: 0 },
    ]);
  });

  it('follows the weights it is given', () => {
    const candidates: C[] = [
      { text: 'likely', logProb: -1, tokens: 1, syntaxErrors: 2 },
      { text: 'parses', logProb: -3, tokens: 1, syntaxErrors: 0 },
    ];
    assert.deepEqual(rank(candidates, { likelihood: 1, reward: 1, syntax: 0 }).map((r) => r.text), ['likely', 'parses']);
    assert.deepEqual(rank(candidates, { likelihood: 1, reward: 1, syntax: 2 }).map((r) => r.text), ['parses', 'likely']);
  });

  it('lets a reward reorder candidates once a discriminator scores them', () => {
    const candidates: C[] = [
      { text: 'a', logProb: -1, tokens: 1, reward: -2 },
      { text: 'b', logProb: -2, tokens: 1, reward: 1 },
    ];
    assert.deepEqual(rank(candidates).map((r) => r.text), ['b', 'a']);
  });
});
