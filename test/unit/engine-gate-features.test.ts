import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cursorMidLine, firstLineAgreement, firstLineKey, firstLineStats, gateFeatures, type GateRow, lineMinConfidences } from '../../server/engine/gate-features';
import { infill } from '../../server/engine/infill';
import { resolveSamplerOptions } from '../../server/engine/options';
import type { InfillRequest } from '../../server/engine/types';
import { CharCodec, FACTS, holeStartAfter, textModel } from './engine-mocks';

const token = (text: string | undefined, confidence: number) => ({ text, confidence, logProb: Math.log(confidence) });

describe('the gate features: first line', () => {
  it('reads the tokens up to and including the one that ends the first line', () => {
    const stats = firstLineStats([token('if', 0.9), token(' x', 0.5), token(':\n', 0.7), token('  y', 0.01), token(undefined, 0.2)]);
    assert.equal(stats.tokens, 3);
    assert.ok(Math.abs(stats.meanConfidence - 0.7) < 1e-12);
    assert.equal(stats.minConfidence, 0.5, 'the unsure token of the second line does not count');
  });

  it('ends a line without a newline at the end-of-span, which counts', () => {
    const stats = firstLineStats([token('x', 0.8), token(undefined, 0.4)]);
    assert.equal(stats.tokens, 2);
    assert.ok(Math.abs(stats.meanConfidence - 0.6) < 1e-12);
    assert.equal(stats.minConfidence, 0.4);
  });

  it('gives each line the least probability of the tokens that wrote it, up to the end-of-span', () => {
    const tokens = [token('if', 0.9), token(' x', 0.5), token(':\n', 0.7), token('  y', 0.2), token('\n\n', 0.6), token('z', 0.8), token(undefined, 0.1), token('w', 0.01)];
    assert.deepEqual(lineMinConfidences(tokens), [0.5, 0.2, 0.6, 0.8], 'a double break ends an empty line of its own');
    assert.deepEqual(lineMinConfidences([token('a\n', 0.3)]), [0.3], 'nothing after the last break');
    assert.deepEqual(lineMinConfidences([]), []);
  });

  it('is all zero without tokens', () => {
    assert.deepEqual(firstLineStats([]), { tokens: 0, meanConfidence: 0, minConfidence: 0 });
  });

  it('compares rows on their first line without the whitespace around it; blank rows never agree', () => {
    assert.equal(firstLineKey('  return x  \n  y'), 'return x');
    assert.equal(firstLineAgreement('return x\nfoo', ['  return x', 'return y', undefined]), 1 / 3);
    assert.equal(firstLineAgreement('\n', [undefined]), 0);
    assert.equal(firstLineAgreement('x', []), 0, 'one row has nothing to agree with');
  });
});

describe('the gate features of a suggestion', () => {
  const row = (text: string, meanConfidence = 0.6, agreement = 1): GateRow => ({
    text,
    firstLine: { tokens: 3, meanConfidence, minConfidence: meanConfidence / 2 },
    agreement,
  });

  it("reads the model row's first line and agreement when no copy is offered", () => {
    assert.deepEqual(gateFeatures(row('x = 1'), undefined, 'def f():\n    '), {
      source: 'model',
      copyRun: 0,
      copyAgrees: false,
      firstLineMean: 0.6,
      firstLineMin: 0.3,
      agreement: 1,
      midLine: false,
    });
  });

  it("judges a copy by its run and whether the model's best row has its first line", () => {
    const copy = { text: 'total += value', matchLength: 17 };
    assert.deepEqual(gateFeatures(row('  total += value\n  count += 1'), copy, 'for value in values:\n  total'), {
      source: 'copy',
      copyRun: 17,
      copyAgrees: true,
      firstLineMean: 0.6,
      firstLineMin: 0.3,
      agreement: 1,
      midLine: true,
    });
    assert.equal(gateFeatures(row('total -= value'), copy, '').copyAgrees, false);
    assert.deepEqual(gateFeatures(undefined, copy, ''), {
      source: 'copy',
      copyRun: 17,
      copyAgrees: false,
      firstLineMean: 0,
      firstLineMin: 0,
      agreement: 0,
      midLine: false,
    });
  });

  it('knows whether the cursor is inside a line', () => {
    assert.equal(cursorMidLine('x = 1\n    '), false, 'indentation only');
    assert.equal(cursorMidLine('x = 1\n'), false);
    assert.equal(cursorMidLine(''), false);
    assert.equal(cursorMidLine('x = 1\n    y ='), true);
    assert.equal(cursorMidLine('print('), true, 'the first line of the file');
  });
});

describe('infill computes the gate features of each candidate', () => {
  const codec = new CharCodec();
  const options = (candidates: number) => resolveSamplerOptions({ cacheNgram: false, candidates, steps: 16 });
  const request = (prefix: string): InfillRequest => ({ segments: [prefix, ''], holes: [{ maxTokens: 16 }], languageId: 'python' });

  it("from the first line's tokens only: a sure first line and an unsure second one", async () => {
    const prefix = 'x = ';
    // Strength 12 is a probability of about 1 over the mock vocabulary; strength 4 leaves it well below.
    const { model } = textModel(holeStartAfter(prefix.length), 'ab\ncd', (i) => (i < 3 ? 12 : 4));
    const result = await infill(model, codec, FACTS, request(prefix), options(1));
    const [best] = result.candidates;
    assert.equal(best.holes[0], 'ab\ncd');
    assert.equal(best.firstLine.tokens, 3, "'a', 'b' and the newline");
    assert.ok(best.firstLine.minConfidence > 0.9, `first line sure: ${best.firstLine.minConfidence}`);
    assert.ok(best.meanConfidence < best.firstLine.meanConfidence - 0.1, 'the whole row is less sure than its first line');
    assert.equal(best.agreement, 0, 'one row agrees with no other');
  });

  it('counts the rows that wrote the same first line before near-duplicates are merged', async () => {
    const prefix = 'x = ';
    const { model } = textModel(holeStartAfter(prefix.length), 'ab');
    const result = await infill(model, codec, FACTS, request(prefix), options(3));
    assert.equal(result.candidates.length, 1, 'the three rows came out the same and were merged');
    assert.equal(result.candidates[0].agreement, 1);
  });
});
