import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildCanvas, cacheTokens } from '../../server/engine/canvas';
import { infill, MAX_CACHE_RELATED_TOKENS, withRelated } from '../../server/engine/infill';
import { CACHE_ENTRIES, CACHE_SEPARATOR, emptyMixedList, emptyPrediction, ListMixer, NgramCache } from '../../server/engine/ngram-cache';
import { OptionsError } from '../../server/engine/errors';
import { sampleCanvas, type SamplerCanvas } from '../../server/engine/sampler';
import type { KBest, ModelFn } from '../../server/engine/types';
import { kbestFromLogits } from '../fixtures/kbest';
import { answer, CharCodec, EOS, FACTS, HOLE_START, hashedModel, MASK, samplerConfig, scriptedModel, spanCanvas, tok, VOCAB } from './engine-mocks';

const ids = (text: string): number[] => Array.from(text, tok);
const cacheOf = (...texts: string[]): Int32Array => Int32Array.from(texts.flatMap((text) => [...ids(text), CACHE_SEPARATOR]));
/** The cache's prediction after `context` (oldest first, as text), as {character: probability}. */
function predict(cache: NgramCache, context: string): { dist: Record<string, number>; confidence: number; matched: number } {
  const out = emptyPrediction(16);
  const newestFirst = ids(context).reverse();
  cache.predict(newestFirst, newestFirst.length, out);
  const dist: Record<string, number> = {};
  for (let e = 0; e < out.size; e++) dist[String.fromCharCode(out.ids[e] - tok('\0'))] = out.probabilities[e];
  return { dist, confidence: out.confidence, matched: out.matched };
}

describe('the cache n-gram model', () => {
  it('follows the longest context that matches, and backs off to shorter ones (Witten-Bell)', () => {
    const cache = new NgramCache(cacheOf('xbcA', 'ybcB', 'ybcB'), VOCAB, 4);
    // After "c": A once, B twice (c_1 = 3, u_1 = 2). After "bc": the same. After "xbc": A once (c_3 = 1, u_3 = 1).
    const afterC = predict(cache, 'c');
    assert.deepEqual(afterC.dist, { B: 2 / 3, A: 1 / 3 });
    const afterXbc = predict(cache, 'xbc');
    const p2 = { A: (1 + 2 * (1 / 3)) / 5, B: (2 + 2 * (2 / 3)) / 5 };
    assert.equal(afterXbc.matched, 3);
    assert.ok(Math.abs(afterXbc.dist.A - (1 + p2.A) / 2) < 1e-12);
    assert.ok(Math.abs(afterXbc.dist.B - p2.B / 2) < 1e-12);
    assert.ok(afterXbc.dist.A > afterXbc.dist.B, 'the longer context wins');
    // Confidence: 1 - the product of the escapes u / (c + u) over the matched lengths.
    assert.ok(Math.abs(afterXbc.confidence - (1 - (2 / 5) * (2 / 5) * (1 / 2))) < 1e-12);
    assert.ok(Math.abs(afterC.confidence - (1 - 2 / 5)) < 1e-12);
  });

  it('gives a context seen once with one continuation confidence 1/2, and one seen more often more', () => {
    assert.equal(predict(new NgramCache(cacheOf('ab'), VOCAB, 3), 'a').confidence, 0.5);
    assert.ok(predict(new NgramCache(cacheOf('ab ab ab ab'), VOCAB, 3), 'a').confidence > 0.75);
  });

  it('answers nothing for a token it never saw followed by another', () => {
    const cache = new NgramCache(cacheOf('abc'), VOCAB, 4);
    const out = emptyPrediction();
    assert.equal(cache.predict([tok('z')], 1, out), false);
    assert.equal(cache.predict([tok('c')], 1, out), false, 'the last token of a text has no next one');
    assert.equal(cache.predict([], 0, out), false);
    assert.equal(out.size, 0);
    assert.equal(out.confidence, 0);
  });

  it('never runs a context across a separator or an id it may not predict, and never predicts one', () => {
    const cache = new NgramCache(Int32Array.from([tok('a'), CACHE_SEPARATOR, tok('b'), tok('x'), EOS, tok('c'), tok('y')]), VOCAB, 4, (id) => id !== EOS);
    assert.deepEqual(predict(cache, 'a').dist, {}, 'a is followed by a separator');
    assert.deepEqual(predict(cache, 'b').dist, { x: 1 });
    assert.deepEqual(predict(cache, 'x').dist, {}, 'end-of-span is never predicted');
    const out = emptyPrediction();
    cache.predict([tok('c'), EOS, tok('x')], 3, out);
    assert.equal(out.matched, 1, 'no context runs across end-of-span');
  });

  it('uses at most order - 1 tokens of context', () => {
    const cache = new NgramCache(cacheOf('abcdX', 'zbcdY'), VOCAB, 3);
    assert.equal(predict(cache, 'abcd').matched, 2);
    assert.ok(Math.abs(predict(cache, 'abcd').dist.X - 0.5) < 1e-12, 'the 4-token context is cut to "cd", which both share');
  });

  it('keeps its CACHE_ENTRIES likeliest next tokens, best first', () => {
    const text = 'a0 a1 a1 a2 a2 a2 a3 a4 a5 a6 a7 a8 a9';
    const out = emptyPrediction();
    new NgramCache(cacheOf(text), VOCAB, 2).predict([tok('a')], 1, out);
    assert.equal(out.size, CACHE_ENTRIES);
    assert.deepEqual([out.ids[0], out.ids[1], out.ids[2]], [tok('2'), tok('1'), tok('0')]);
    for (let e = 1; e < out.size; e++) assert.ok(out.probabilities[e] <= out.probabilities[e - 1]);
  });
});

describe('mixing the cache into a K-best list', () => {
  const logits = (prefer: Record<number, number>): Float32Array => {
    const out = new Float32Array(VOCAB);
    for (const [id, logit] of Object.entries(prefer)) out[Number(id)] = logit;
    return out;
  };
  const probabilities = (list: KBest): Map<number, number> => {
    const out = new Map<number, number>();
    for (let j = 0; j < list.k && list.logits[j] !== -Infinity; j++) out.set(list.ids[j], Math.exp(list.logits[j] - list.logZ[0]));
    return out;
  };
  const prediction = (entries: [number, number][], confidence = 1) => {
    const out = emptyPrediction();
    entries.forEach(([id, p], e) => {
      out.ids[e] = id;
      out.probabilities[e] = p;
    });
    out.size = entries.length;
    out.confidence = confidence;
    return out;
  };

  it('is (1 - λ) p_model + λ p_cache, best first, and gives a token outside the list its share of the tail', () => {
    const model = answer(logits({ [tok('a')]: 5, [tok('b')]: 4 }), 8);
    const modelP = probabilities({ ...model, logZ: model.logZ });
    const tail = (1 - [...modelP.values()].reduce((s, p) => s + p, 0)) / (model.allowed - 8);
    const out = emptyMixedList(8);
    assert.ok(new ListMixer().mix(model, 0, prediction([[tok('b'), 0.7], [tok('z'), 0.3]]), 0.4, out));
    const mixed = probabilities(out);
    assert.equal(out.ids[0], tok('b'), 'the cache moved b ahead of a');
    assert.ok(Math.abs(mixed.get(tok('b'))! - (0.6 * modelP.get(tok('b'))! + 0.4 * 0.7)) < 1e-6);
    assert.ok(Math.abs(mixed.get(tok('a'))! - 0.6 * modelP.get(tok('a'))!) < 1e-6);
    assert.ok(Math.abs(mixed.get(tok('z'))! - (0.6 * tail + 0.4 * 0.3)) < 1e-6);
    for (let j = 1; j < out.k; j++) assert.ok(out.logits[j] <= out.logits[j - 1], 'sorted best first');
    assert.equal(out.allowed, model.allowed);
  });

  it('leaves the model alone at λ = 0', () => {
    const model = answer(logits({ [tok('a')]: 5, [tok('b')]: 4, [tok('c')]: 1 }), 8);
    const out = emptyMixedList(8);
    new ListMixer().mix(model, 0, prediction([[tok('c'), 1]]), 0, out);
    const before = probabilities(model);
    for (const [id, p] of probabilities(out)) if (before.has(id)) assert.ok(Math.abs(p - before.get(id)!) < 1e-6);
    assert.equal(out.ids[0], tok('a'));
  });

  it('refuses a malformed list, so that the chooser names the problem', () => {
    const broken: KBest = { k: 2, logits: Float32Array.from([1, 2]), ids: Int32Array.from([tok('a'), tok('b')]), logZ: Float32Array.from([3]), allowed: 100 };
    assert.equal(new ListMixer().mix(broken, 0, prediction([[tok('a'), 1]]), 0.5, emptyMixedList(2)), false);
    const empty: KBest = { ...broken, logits: Float32Array.from([-Infinity, -Infinity]) };
    assert.equal(new ListMixer().mix(empty, 0, prediction([[tok('a'), 1]]), 0.5, emptyMixedList(2)), false);
  });
});

describe('the sampler with the cache n-gram model', () => {
  // A model that knows nothing: every token equally likely at every position, end-of-span a little likelier.
  const clueless = () => scriptedModel(() => ({ token: EOS, strength: 0.5 }));
  // The document has "ab" followed by "xyz" elsewhere; the canvas is [tag, a, b, MASK x 16, c].
  const document = cacheOf('q ab=xyz;\n', 'c');

  it('writes what followed the text before the hole elsewhere in the document, left to right', async () => {
    const result = await sampleCanvas(clueless().model, spanCanvas, samplerConfig({ eosAfterCode: true, cache: { tokens: document, order: 4, weight: 0.9 } }));
    const text = String.fromCharCode(...Array.from(result.rows[0].subarray(HOLE_START, HOLE_START + 6), (id) => id - tok('\0')));
    assert.equal(text, '=xyz;\n');
    const firstSix = result.commits[0].filter((c) => c.index < 6);
    for (let i = 1; i < firstSix.length; i++) assert.ok(firstSix[i].step >= firstSix[i - 1].step, 'each after its left neighbour');
    assert.ok(firstSix.every((c) => c.confidence > 0.5), 'the mixture\'s probability is the commit\'s confidence');
  });

  it('writes something else without it, or at weight 0, with the same model calls', async () => {
    const without = await sampleCanvas(clueless().model, spanCanvas, samplerConfig({ eosAfterCode: true }));
    const { model, calls } = clueless();
    const weightless = await sampleCanvas(model, spanCanvas, samplerConfig({ eosAfterCode: true, cache: { tokens: document, order: 4, weight: 0 } }));
    assert.deepEqual(weightless.rows, without.rows);
    assert.deepEqual(weightless.commits, without.commits);
    assert.notEqual(without.rows[0][HOLE_START], tok('='));
    const withCache = clueless();
    await sampleCanvas(withCache.model, spanCanvas, samplerConfig({ eosAfterCode: true, cache: { tokens: document, order: 4, weight: 0.9 } }));
    assert.equal(withCache.calls.length, calls.length);
  });

  it('mixes only where the left neighbour is known: a position after a masked one keeps the model\'s choice', async () => {
    // The model is sure of "Q" two positions into the hole; the cache would say "x" there after "b =", but "=" is
    // not written when that position is decided in the first step.
    const model = scriptedModel((position) => (position === HOLE_START + 1 ? { token: tok('Q'), strength: 12 } : { token: EOS, strength: 0.5 }));
    const result = await sampleCanvas(model.model, spanCanvas, samplerConfig({ steps: 16, cache: { tokens: document, order: 4, weight: 1 } }));
    const first = result.commits[0].filter((c) => c.step === 0);
    assert.deepEqual(first.map((c) => [c.index, c.tokenId]), [[1, tok('Q')]], 'the sure model position goes first, unmixed');
    assert.equal(result.rows[0][HOLE_START], tok('='), 'the first position still follows the cache');
  });

  it('is a pure function of its inputs: the same generation twice, with sampling rows', async () => {
    const settings = samplerConfig({ temperatures: [0, 0.8, 0.8], seed: 3, cache: { tokens: document, order: 5, weight: 0.7 } });
    const first = await sampleCanvas(hashedModel(1).model, spanCanvas, settings);
    const second = await sampleCanvas(hashedModel(1).model, spanCanvas, settings);
    assert.deepEqual(first.rows, second.rows);
    assert.deepEqual(first.commits, second.commits);
    for (const row of first.rows) assert.ok(!row.includes(MASK));
  });

  it('takes a token-healing chain\'s earlier links as known context', async () => {
    // The chain spells the partial "ma" as "m" and then "a", "ax" (the model's favourite) or "ark" (what the document
    // wrote after "x.m"): its second link is decided after "x.m", the first link counting as known.
    const WORDS = ['ax', 'ark'];
    const V = VOCAB + WORDS.length;
    const word = (w: string): number => VOCAB + WORDS.indexOf(w);
    const canvas: SamplerCanvas = { ids: Int32Array.from([4, tok('x'), tok('.'), ...Array<number>(8).fill(MASK)]), holes: [{ start: 3, length: 8 }] };
    const model: ModelFn = async (input) => {
      const out = new Float32Array(input.batch * input.numPositions * V);
      for (let s = 0; s < input.batch * input.numPositions; s++) {
        const position = input.positions[s];
        if (position === 3) out[s * V + tok('m')] = 6;
        else if (position === 4) {
          out[s * V + word('ax')] = 4;
          out[s * V + word('ark')] = 3;
        } else out[s * V + EOS] = 6;
      }
      return kbestFromLogits(out, V, 16, [MASK, 0, 3, 4, 5, 6, 7]);
    };
    const rule = { partial: 'ma', ids: [tok('m'), tok('a'), word('ax'), word('ark')], texts: ['m', 'a', 'ax', 'ark'], fallback: [tok('m'), tok('a')] };
    const config = (cache?: Int32Array) => ({
      ...samplerConfig({ vocabSize: V, eosAfterCode: true, eosFill: true, firstTokens: [rule] }),
      ...(cache ? { cache: { tokens: cache, order: 4, weight: 0.9 } } : {}),
    });
    const without = await sampleCanvas(model, canvas, config());
    assert.equal(without.rows[0][4], word('ax'));
    const withCache = await sampleCanvas(model, canvas, config(Int32Array.from([tok('x'), tok('.'), tok('m'), word('ark'), tok(';')])));
    assert.equal(withCache.rows[0][3], tok('m'));
    assert.equal(withCache.rows[0][4], word('ark'), 'after "x.m" the document went on with "ark"');
  });

  it('refuses a cache it cannot use, naming it', async () => {
    await assert.rejects(
      sampleCanvas(clueless().model, spanCanvas, samplerConfig({ cache: { tokens: document, order: 1, weight: 2 } })),
      (error: unknown) => error instanceof OptionsError && /order must be an integer from 2/.test(error.message) && /weight must be from 0 to 1/.test(error.message),
    );
  });
});

describe('the cache in infill', () => {
  const codec = new CharCodec();
  // Beyond the canvas's window (contextTokens 16) the document wrote "total = compute(items)"; the prefix ends in
  // "total = c" ... and a clueless model has nothing to go on but the cache.
  const far = 'total = compute(items)\n' + 'x'.repeat(200) + '\n';
  const prefix = far + 'print(total)\ntotal = c';
  const clueless = scriptedModel(() => ({ token: EOS, strength: 0.5 })).model;
  const request = (cacheSegments?: string[]) => ({
    segments: [prefix.slice(-12), '\n'],
    holes: [{ maxTokens: 16 }],
    languageId: 'python',
    ...(cacheSegments ? { cacheSegments } : {}),
  });
  const options = { steps: 16, strategy: 'confidence' as const, confidenceThreshold: 0, temperature: 0, topP: 1, candidates: 1, seed: 0, contextTokens: 16 };

  it('counts the cache segments, the whole document, when the options turn it on', async () => {
    const on = await infill(clueless, codec, FACTS, request([prefix, '\n']), { ...options, cacheNgram: true, cacheNgramWeight: 0.9, cacheNgramOrder: 6 });
    const firstLine = (result: typeof on): string | undefined => result.candidates[0]?.holes[0].split('\n')[0];
    assert.equal(firstLine(on), 'ompute(items)');
    const off = await infill(clueless, codec, FACTS, request([prefix, '\n']), { ...options, cacheNgram: false });
    assert.notEqual(firstLine(off), 'ompute(items)');
  });

  it('counts only the segments without cache segments', async () => {
    const result = await infill(clueless, codec, FACTS, request(), { ...options, cacheNgram: true, cacheNgramWeight: 0.9 });
    assert.notEqual(result.candidates[0]?.holes[0].split('\n')[0], 'ompute(items)');
  });

  it('counts other texts\' ids (cacheRelated) after the document\'s, each on its own, at most MAX_CACHE_RELATED_TOKENS', async () => {
    const own = cacheOf('ab');
    const layout = withRelated(own, [Int32Array.from(ids('xy')), new Int32Array(0), Int32Array.from(ids('z'))]);
    assert.deepEqual(Array.from(layout), [...ids('ab'), CACHE_SEPARATOR, ...ids('xy'), CACHE_SEPARATOR, ...ids('z'), CACHE_SEPARATOR]);
    assert.equal(withRelated(own, undefined), own);
    const big = new Int32Array(MAX_CACHE_RELATED_TOKENS - 10).fill(tok('q'));
    const capped = withRelated(own, [big, Int32Array.from(ids('0123456789abcdef'))]);
    assert.equal(capped.length, own.length + MAX_CACHE_RELATED_TOKENS + 2, 'the second text is cut at the cap');
    assert.deepEqual(Array.from(capped.subarray(-11)), [...ids('0123456789'), CACHE_SEPARATOR]);
    // Through infill: the other text is what the clueless model follows.
    const related = Int32Array.from(ids('total = compute(items)\n'));
    const result = await infill(clueless, codec, FACTS, { ...request(), cacheRelated: [related] }, { ...options, cacheNgram: true, cacheNgramWeight: 0.9 });
    assert.equal(result.candidates[0]?.holes[0].split('\n')[0], 'ompute(items)');
    await assert.rejects(
      infill(clueless, codec, FACTS, { ...request(), cacheRelated: [[1, 2]] as unknown as Int32Array[] }, { ...options, cacheNgram: true }),
      (error: unknown) => error instanceof OptionsError && /cacheRelated must be a list of Int32Array/.test(error.message),
    );
  });

  it('refuses cache segments laid out unlike the segments', async () => {
    await assert.rejects(infill(clueless, codec, FACTS, request([prefix]), { ...options, cacheNgram: true }), OptionsError);
  });

  it('takes a healed hole\'s partial tokens off the cache text before it, as off the canvas', () => {
    const canvas = buildCanvas(codec, FACTS, { segments: ['ab', 'c'], holes: [{ maxTokens: 8 }], languageId: 'python' }, 64);
    const healed = { healing: [{ partial: 'b', ids: [tok('b')], texts: ['b'], fallback: [tok('b')] }] };
    assert.deepEqual(Array.from(cacheTokens(codec, FACTS, ['zab', 'cd'], healed)), [tok('z'), tok('a'), CACHE_SEPARATOR, tok('c'), tok('d'), CACHE_SEPARATOR]);
    assert.deepEqual(Array.from(cacheTokens(codec, FACTS, ['zab', 'cd'], canvas)), [...ids('zab'), CACHE_SEPARATOR, ...ids('cd'), CACHE_SEPARATOR]);
  });
});
