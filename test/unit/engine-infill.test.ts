import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AbortError, OptionsError } from '../../server/engine/errors';
import { infill, type InfillResult } from '../../server/engine/infill';
import { resolveSamplerOptions } from '../../server/engine/options';
import type { Trace } from '../../server/engine/trace';
import type { InfillRequest, SamplerOptions } from '../../server/engine/types';
import { CharCodec, EOS, FACTS, hashedModel, holeStartAfter, MASK, scriptedModel, textModel, tok } from './engine-mocks';

const codec = new CharCodec();
// These hold the engine to what the mock model writes; the cache n-gram model (on by default) would mix the prompt's
// own characters in, and has its own tests (engine-ngram-cache.test.ts).
const options = (overrides: Partial<SamplerOptions> = {}): SamplerOptions => resolveSamplerOptions({ cacheNgram: false, ...overrides });
const request = (prefix: string, suffix: string, maxTokens = 8, languageId = 'python'): InfillRequest => ({
  segments: [prefix, suffix],
  holes: [{ maxTokens }],
  languageId,
});
const withoutTimings = (result: InfillResult): object => ({ ...result, modelMs: 0, totalMs: 0 });

describe('infill', () => {
  it('fills the hole with the text the model writes and stops at end-of-span', async () => {
    const prefix = 'def add(a, b):\n    return ';
    const { model } = textModel(holeStartAfter(prefix.length), 'a + b');
    const result = await infill(model, codec, FACTS, request(prefix, '\n'), options());
    assert.equal(result.candidates.length, 1);
    const [best] = result.candidates;
    assert.deepEqual(best.holes, ['a + b']);
    assert.deepEqual(best.tokenIds, [Array.from('a + b', tok)]);
    assert.equal(best.scoredTokens, 6, 'five characters and the end-of-span that ended them');
    assert.ok(best.logProb < 0 && best.meanConfidence > 0.9 && best.meanConfidence <= 1);
    assert.equal(best.score, best.logProb / best.scoredTokens);
    assert.equal(result.canvasTokens, 1 + prefix.length + 8 + 1);
  });

  it('trims a closing bracket that is already after the cursor', async () => {
    const { model } = textModel(holeStartAfter('print('.length), 'x)');
    const result = await infill(model, codec, FACTS, request('print(', ')\n'), options());
    assert.deepEqual(result.candidates[0].holes, ['x']);
  });

  it('returns no candidates when the model writes only whitespace, and still returns a trace', async () => {
    const { model } = textModel(holeStartAfter(4), '  \n ');
    const result = await infill(model, codec, FACTS, request('x = ', '\n'), options());
    assert.deepEqual(result.candidates, []);
    assert.equal(result.trace.row, 0);
    assert.ok(result.trace.tokens.length > 0);
  });

  it('generates N candidates as one batch: one model call per step, one row per distinct canvas', async () => {
    const { model, calls } = hashedModel();
    const result = await infill(model, codec, FACTS, request('x = ', '\n', 16), options({ candidates: 4, steps: 8, temperature: 1, eosFill: false }));
    assert.equal(calls.length, 8);
    assert.equal(result.modelCalls, 8);
    assert.equal(calls[0].batch, 1, 'the candidates start from one canvas');
    assert.ok(calls.slice(1).every((call) => call.batch === 4), 'sampled rows part after the first step');
    assert.ok(result.candidates.length >= 1 && result.candidates.length <= 4);
  });

  it('merges candidates that come out the same', async () => {
    const { model } = textModel(holeStartAfter(4), 'y + 1', () => 20);
    const result = await infill(model, codec, FACTS, request('x = ', '\n'), options({ candidates: 4 }));
    assert.equal(result.candidates.length, 1);
    assert.deepEqual(result.candidates[0].holes, ['y + 1']);
  });

  it('ranks the candidates by the caller score and traces the best one', async () => {
    const { model } = hashedModel();
    const result = await infill(model, codec, FACTS, request('x = ', '\n', 16), options({ candidates: 4, temperature: 1.5 }), {
      score: (candidate) => (candidate.row === 2 ? 100 : -candidate.row),
    });
    assert.equal(result.candidates[0].row, 2);
    assert.equal(result.trace.row, 2);
    const scores = result.candidates.map((c) => c.score);
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
  });

  it('ranks by the mean log-probability per token by default', async () => {
    const { model } = hashedModel();
    const result = await infill(model, codec, FACTS, request('x = ', '\n', 16), options({ candidates: 6, temperature: 1.5 }));
    for (const candidate of result.candidates) assert.equal(candidate.score, candidate.logProb / candidate.scoredTokens);
    const scores = result.candidates.map((c) => c.score);
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
  });

  it('gives the same result for the same seed', async () => {
    const settings = options({ candidates: 3, temperature: 1, seed: 5, strategy: 'entropy' });
    const first = await infill(hashedModel().model, codec, FACTS, request('x = ', '\n', 16), settings);
    const second = await infill(hashedModel().model, codec, FACTS, request('x = ', '\n', 16), settings);
    assert.deepEqual(withoutTimings(first), withoutTimings(second));
  });

  it('reports the trace after every step, and tokens once shown never change', async () => {
    const traces: Trace[] = [];
    const result = await infill(hashedModel().model, codec, FACTS, request('x = ', '\n', 16), options({ steps: 6, eosFill: false }), {
      onStep: (trace) => traces.push(trace),
    });
    assert.equal(traces.length, result.modelCalls);
    traces.forEach((trace, i) => {
      assert.equal(trace.steps, i + 1);
      assert.equal(trace.plannedSteps, 6);
      if (i > 0) assert.deepEqual(trace.tokens.slice(0, traces[i - 1].tokens.length), traces[i - 1].tokens);
    });
    assert.deepEqual(traces[traces.length - 1].tokens, result.trace.tokens);
  });

  it('traces every committed token with its step, confidence and text, and the AR-ness of the order', async () => {
    // Surest on the left: one token per step decodes left to right, then end-of-span fills the rest.
    const { model } = textModel(holeStartAfter(4), 'abc', (i) => 20 - i);
    const result = await infill(model, codec, FACTS, request('x = ', '\n'), options({ steps: 8 }));
    const { trace } = result;
    assert.deepEqual(trace.holeLengths, [8]);
    assert.deepEqual(trace.tokens.slice(0, 4).map((t) => [t.index, t.step, t.text, t.eos, t.filled]), [
      [0, 0, 'a', false, false],
      [1, 1, 'b', false, false],
      [2, 2, 'c', false, false],
      [3, 3, '', true, false],
    ]);
    assert.ok(trace.tokens.slice(4).every((t) => t.eos && t.filled && t.text === '' && t.step === 3));
    assert.ok(trace.tokens.every((t) => t.confidence > 0 && t.confidence <= 1));
    assert.equal(result.modelCalls, 4);
    assert.equal(trace.steps, 4);
    assert.equal(trace.localArness.length, 8);
    assert.equal(trace.localArness[0], 1);
    assert.deepEqual(trace.globalArness, Array(8).fill(1));
  });

  it('fills several holes jointly in one denoising run', async () => {
    const segments = ['a = ', '\nb = ', '\n'];
    const first = 1 + segments[0].length;
    const second = first + 8 + segments[1].length;
    const { model, calls } = scriptedModel((position) => {
      if (position === first) return { token: tok('1'), strength: 12 };
      if (position === second) return { token: tok('2'), strength: 12 };
      return { token: EOS, strength: 12 };
    });
    const result = await infill(model, codec, FACTS, { segments, holes: [{ maxTokens: 8 }, { maxTokens: 8 }], languageId: 'python' }, options({ steps: 4 }));
    assert.deepEqual(result.candidates[0].holes, ['1', '2']);
    assert.ok(calls.length <= 4);
    assert.equal(calls[0].ids.filter((id) => id === MASK).length, 16, 'both holes are masked in the same canvas');
    assert.deepEqual(new Set(result.trace.tokens.map((t) => t.hole)), new Set([0, 1]));
  });

  it('windows a huge file and keeps the text next to the cursor', async () => {
    const prefix = 'A'.repeat(100_000) + 'near';
    const suffix = 'after' + 'B'.repeat(100_000);
    const { model, calls } = hashedModel();
    const result = await infill(model, codec, FACTS, request(prefix, suffix, 32), options({ contextTokens: 1000 }));
    assert.equal(result.canvasTokens, FACTS.maxSeqLen);
    const text = codec.decode(Array.from(calls[0].ids).map((id) => (id === MASK ? tok('_') : id)));
    assert.ok(text.includes('near' + '_'.repeat(32) + 'after'));
  });

  it('tags a TSX file as TypeScript', async () => {
    const { model, calls } = hashedModel();
    await infill(model, codec, FACTS, request('', '', 8, 'typescriptreact'), options({ steps: 1 }));
    assert.equal(calls[0].ids[0], FACTS.langIds.typescript);
  });

  it('rejects bad options before calling the model', async () => {
    const { model, calls } = hashedModel();
    await assert.rejects(infill(model, codec, FACTS, request('', ''), { ...options(), steps: 0 }), OptionsError);
    await assert.rejects(infill(model, codec, FACTS, { segments: ['a'], holes: [{ maxTokens: 8 }], languageId: 'python' }, options()), OptionsError);
    assert.equal(calls.length, 0);
  });

  it('stops with an AbortError when cancelled between steps', async () => {
    const { model, calls } = hashedModel();
    const controller = new AbortController();
    await assert.rejects(
      infill(model, codec, FACTS, request('x = ', '\n', 16), options({ steps: 8 }), { signal: controller.signal, onStep: () => controller.abort() }),
      AbortError,
    );
    assert.equal(calls.length, 1);
  });

  it('times the model calls apart from the engine work', async () => {
    const { model, calls } = hashedModel();
    const result = await infill(model, codec, FACTS, request('x = ', '\n', 16), options());
    assert.equal(result.modelCalls, calls.length);
    assert.ok(result.modelMs >= 0 && result.modelMs <= result.totalMs);
  });
});
