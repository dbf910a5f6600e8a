import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_RERANK_WEIGHTS, meanLogProb, rerankScore, type RerankInputs, type RerankWeights } from '../../server/engine/rerank';

describe('the reranking score', () => {
  const cases: [string, RerankInputs, RerankWeights, number][] = [
    ['is the mean log-probability per token by default', { logProb: -6, tokens: 3 }, DEFAULT_RERANK_WEIGHTS, -2],
    ['adds the reward', { logProb: -6, tokens: 3, reward: 0.5 }, DEFAULT_RERANK_WEIGHTS, -1.5],
    ['costs the syntax weight when the file does not parse', { logProb: -6, tokens: 3, syntaxValid: false }, DEFAULT_RERANK_WEIGHTS, -4],
    ['costs nothing when the file parses', { logProb: -6, tokens: 3, syntaxValid: true }, DEFAULT_RERANK_WEIGHTS, -2],
    ['weighs each term as asked', { logProb: -4, tokens: 2, reward: 1, syntaxValid: false }, { likelihood: 0.5, reward: 3, syntax: 1 }, 1],
    ['ignores the likelihood when its weight is 0, even without tokens', { logProb: 0, tokens: 0, reward: 2 }, { likelihood: 0, reward: 1, syntax: 1 }, 2],
  ];
  for (const [name, inputs, weights, expected] of cases) {
    it(name, () => assert.equal(rerankScore(inputs, weights), expected));
  }

  it('ranks a candidate without tokens last', () => {
    assert.equal(meanLogProb({ logProb: 0, tokens: 0 }), -Infinity);
  });

  it('prefers a parsing candidate over a slightly likelier broken one', () => {
    const broken = rerankScore({ logProb: -1, tokens: 2, syntaxValid: false });
    const parsing = rerankScore({ logProb: -2, tokens: 2, syntaxValid: true });
    assert.ok(parsing > broken);
  });
});
