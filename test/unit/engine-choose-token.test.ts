import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyChoice, TokenChooser } from '../../server/engine/choose-token';
import { ModelOutputError } from '../../server/engine/errors';
import { createRng } from '../../server/engine/rng';
import type { UnmaskStrategy } from '../../server/engine/types';

const softmax = (logits: number[], temperature = 1): number[] => {
  const scaled = logits.map((l) => l / temperature);
  const max = Math.max(...scaled);
  const exps = scaled.map((l) => Math.exp(l - max));
  const z = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / z);
};

function choose(logits: number[], temperature: number, strategy: UnmaskStrategy = 'confidence', topP = 1, banned: number[] = [], seed = 1) {
  const chooser = new TokenChooser(logits.length, banned);
  const out = emptyChoice();
  chooser.choose(Float32Array.from(logits), 0, temperature, topP, strategy, createRng(seed), out, 7, 42);
  return out;
}

const close = (actual: number, expected: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: expected ${expected}, got ${actual}`);

describe('choosing a token at one position', () => {
  const logits = [1, 3, 0.5, 2];
  const p = softmax(logits);

  it('takes the most probable token at temperature 0 and reports its probability and log-probability', () => {
    const choice = choose(logits, 0);
    assert.equal(choice.token, 1);
    close(choice.probability, p[1], 'probability');
    close(choice.logProb, Math.log(p[1]), 'logProb');
    close(choice.score, p[1], 'confidence score');
  });

  it('scores the margin as top-1 minus top-2 probability', () => {
    close(choose(logits, 0, 'margin').score, p[1] - p[3], 'margin');
  });

  it('scores entropy as the negative entropy of the distribution', () => {
    close(choose(logits, 0, 'entropy').score, p.reduce((sum, q) => sum + q * Math.log(q), 0), 'negative entropy');
  });

  it('never chooses a banned id, even when it has the highest logit, and leaves it out of the probabilities', () => {
    const choice = choose([9, 1, 3, 2], 0, 'confidence', 1, [0]);
    assert.equal(choice.token, 2);
    close(choice.probability, softmax([1, 3, 2])[1], 'probability without the banned id');
    for (let seed = 0; seed < 200; seed++) assert.notEqual(choose([9, 1, 3, 2], 1.5, 'confidence', 1, [0], seed).token, 0);
  });

  it('samples in proportion to the tempered distribution', () => {
    const temperature = 0.7;
    const expected = softmax(logits, temperature);
    const counts = [0, 0, 0, 0];
    const chooser = new TokenChooser(4, []);
    const rng = createRng(3);
    const out = emptyChoice();
    const draws = 20000;
    for (let i = 0; i < draws; i++) {
      chooser.choose(Float32Array.from(logits), 0, temperature, 1, 'confidence', rng, out, 0, 0);
      counts[out.token]++;
    }
    counts.forEach((count, token) => assert.ok(Math.abs(count / draws - expected[token]) < 0.015, `token ${token}: ${count / draws} vs ${expected[token]}`));
  });

  it('keeps the log-probability untempered, so rows at different temperatures rank on one scale', () => {
    const choice = choose(logits, 2);
    close(choice.logProb, Math.log(p[choice.token]), 'logProb');
    close(choice.probability, softmax(logits, 2)[choice.token], 'probability under the sampling distribution');
  });

  it('samples only from the nucleus with top-p and renormalises its probabilities', () => {
    // Probabilities 0.5, 0.3, 0.15, 0.05: the smallest set reaching 0.75 is the first two tokens.
    const nucleusLogits = [0.5, 0.3, 0.15, 0.05].map(Math.log);
    const seen = new Set<number>();
    for (let seed = 0; seed < 300; seed++) {
      const choice = choose(nucleusLogits, 1, 'confidence', 0.75, [], seed);
      seen.add(choice.token);
      close(choice.probability, choice.token === 0 ? 0.5 / 0.8 : 0.3 / 0.8, 'renormalised probability');
    }
    assert.deepEqual([...seen].sort(), [0, 1]);
  });

  it('finds the same nucleus as sorting the whole distribution would', () => {
    const rng = createRng(99);
    for (let trial = 0; trial < 60; trial++) {
      const vocab = 50 + trial * 7;
      const spread = 1 + (trial % 5) * 2;
      const randomLogits = Array.from({ length: vocab }, () => (rng.next() * 2 - 1) * spread);
      const topP = [0.5, 0.9, 0.95][trial % 3];
      const temperature = [0.7, 1, 1.3][trial % 3];
      const probabilities = softmax(randomLogits, temperature);
      const sorted = probabilities.map((q, token) => ({ q, token })).sort((a, b) => b.q - a.q);
      const nucleus = new Set<number>();
      let mass = 0;
      for (const { q, token } of sorted) {
        if (mass >= topP) break;
        nucleus.add(token);
        mass += q;
      }
      for (let seed = 0; seed < 5; seed++) {
        const choice = choose(randomLogits, temperature, 'confidence', topP, [], trial * 10 + seed);
        assert.ok(nucleus.has(choice.token), `trial ${trial}: token ${choice.token} is outside the nucleus`);
        const expected = probabilities[choice.token] / mass;
        assert.ok(Math.abs(choice.probability - expected) < 1e-4 * expected, `trial ${trial}: ${choice.probability} vs ${expected}`);
      }
    }
  });

  it('scores margin and entropy over the nucleus when top-p truncates', () => {
    const nucleusLogits = [0.5, 0.3, 0.15, 0.05].map(Math.log);
    close(choose(nucleusLogits, 1, 'margin', 0.75).score, (0.5 - 0.3) / 0.8, 'margin');
    const q = [0.5 / 0.8, 0.3 / 0.8];
    close(choose(nucleusLogits, 1, 'entropy', 0.75).score, q[0] * Math.log(q[0]) + q[1] * Math.log(q[1]), 'negative entropy');
  });

  it('draws the random strategy score from the seeded stream', () => {
    assert.equal(choose(logits, 0, 'random', 1, [], 5).score, choose(logits, 0, 'random', 1, [], 5).score);
    assert.notEqual(choose(logits, 0, 'random', 1, [], 5).score, choose(logits, 0, 'random', 1, [], 6).score);
  });

  it('copes with logits of -Infinity', () => {
    const choice = choose([-Infinity, 2, -Infinity, 1], 0, 'entropy');
    assert.equal(choice.token, 1);
    assert.ok(Number.isFinite(choice.score));
  });

  it('fails clearly on NaN logits or when no token is usable', () => {
    assert.throws(() => choose([1, Number.NaN, 2, 0], 0), (error: unknown) => error instanceof ModelOutputError && /NaN.*row 7, position 42/.test(error.message));
    assert.throws(() => choose([-Infinity, -Infinity], 0), ModelOutputError);
    assert.throws(() => choose([1, 2], 0, 'confidence', 1, [0, 1]), ModelOutputError);
  });
});
