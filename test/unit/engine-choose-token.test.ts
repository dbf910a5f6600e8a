import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyChoice, TokenChooser } from '../../server/engine/choose-token';
import { ModelOutputError } from '../../server/engine/errors';
import { createRng } from '../../server/engine/rng';
import type { KBest, UnmaskStrategy } from '../../server/engine/types';
import { kbestFromLogits } from '../fixtures/kbest';

const softmax = (logits: number[], temperature = 1): number[] => {
  const scaled = logits.map((l) => l / temperature);
  const max = Math.max(...scaled);
  const exps = scaled.map((l) => Math.exp(l - max));
  const z = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / z);
};

const EOS = 0;

/** The K-best list (all of the vocabulary unless `k` says less) of one position with these full logits. */
const listOf = (logits: number[], banned: number[] = [], k = logits.length): KBest => kbestFromLogits(Float32Array.from(logits), logits.length, k, banned);

function choose(logits: number[], temperature: number, strategy: UnmaskStrategy = 'confidence', topP = 1, banned: number[] = [], seed = 1, k = logits.length, banEos = false) {
  const chooser = new TokenChooser(logits.length, banned, EOS, k);
  const out = emptyChoice();
  chooser.choose(listOf(logits, banned, k), 0, banEos, temperature, topP, strategy, createRng(seed), out, 7, 42);
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
    const chooser = new TokenChooser(4, [], EOS, 4);
    const list = listOf(logits);
    const rng = createRng(3);
    const out = emptyChoice();
    const draws = 20000;
    for (let i = 0; i < draws; i++) {
      chooser.choose(list, 0, false, temperature, 1, 'confidence', rng, out, 0, 0);
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

  it('samples only among the K listed tokens and scores with the list renormalised', () => {
    // Four tokens of which the list keeps two: the sampling distribution is the tempered top-2.
    const wide = [2, 1.5, 1.4, 1.3];
    for (let seed = 0; seed < 200; seed++) {
      const choice = choose(wide, 1, 'confidence', 1, [], seed, 2);
      assert.ok(choice.token === 0 || choice.token === 1, `token ${choice.token} is outside the list`);
      close(choice.probability, softmax([2, 1.5])[choice.token], 'probability under the listed distribution');
      close(choice.logProb, Math.log(softmax(wide)[choice.token]), 'logProb under the whole distribution');
    }
  });

  it('scores at temperature 0 with the model\'s own probabilities, whatever K is', () => {
    const wide = [2, 1.5, 1.4, 1.3];
    const p = softmax(wide);
    close(choose(wide, 0, 'confidence', 1, [], 1, 2).score, p[0], 'confidence');
    close(choose(wide, 0, 'margin', 1, [], 1, 2).score, p[0] - p[1], 'margin');
    // The two unlisted tokens count as one even tail of their total mass.
    const tail = p[2] + p[3];
    const expected = p[0] * Math.log(p[0]) + p[1] * Math.log(p[1]) + tail * Math.log(tail / 2);
    close(choose(wide, 0, 'entropy', 1, [], 1, 2).score, expected, 'entropy with an even tail');
    close(choose(wide, 0, 'entropy').score, p.reduce((sum, q) => sum + q * Math.log(q), 0), 'exact with every token listed');
  });

  it('skips end-of-span where the position may not end its span, without renormalising', () => {
    const eosFirst = [5, 1, 3, 2];
    const choice = choose(eosFirst, 0, 'margin', 1, [], 1, 4, true);
    assert.equal(choice.token, 2);
    const p = softmax(eosFirst);
    close(choice.probability, p[2], 'probability');
    close(choice.score, p[2] - p[3], 'margin between the allowed tokens');
    for (let seed = 0; seed < 100; seed++) assert.notEqual(choose(eosFirst, 2, 'confidence', 1, [], seed, 4, true).token, EOS);
  });

  it('copes with logits of -Infinity', () => {
    const choice = choose([-Infinity, 2, -Infinity, 1], 0, 'entropy');
    assert.equal(choice.token, 1);
    assert.ok(Number.isFinite(choice.score));
  });

  it('fails clearly on NaN logits, broken lists, or when no token is usable', () => {
    const broken = (change: (list: KBest) => void): (() => void) => () => {
      const list = listOf([3, 2, 1]);
      change(list);
      new TokenChooser(3, [], EOS, 3).choose(list, 0, false, 0, 1, 'confidence', createRng(1), emptyChoice(), 7, 42);
    };
    const named = (pattern: RegExp) => (error: unknown) => error instanceof ModelOutputError && pattern.test(error.message) && /row 7, position 42/.test(error.message);
    assert.throws(broken((l) => (l.logits[1] = Number.NaN)), named(/NaN/));
    assert.throws(broken((l) => (l.logits[2] = 9)), named(/not sorted/));
    assert.throws(broken((l) => (l.ids[0] = 3)), named(/outside the vocabulary/));
    assert.throws(broken((l) => (l.logZ[0] = Number.NaN)), named(/log_z/));
    assert.throws(() => choose([-Infinity, -Infinity], 0), ModelOutputError);
    assert.throws(() => choose([1, 2], 0, 'confidence', 1, [0, 1]), ModelOutputError);
  });
});
