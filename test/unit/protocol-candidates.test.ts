import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { resolveSamplerOptions } from '../../server/engine/options';
import type { ModelFn, SamplerOptions } from '../../server/engine/types';
import { asInserted, bestHoleFill, rankedCompletions, withCopyCandidate } from '../../server/protocol/candidates';
import type { DiscriminatorInput } from '../../server/runtime/discriminator';
import { RUNTIME_FILE, SyntaxChecker } from '../../server/runtime/syntax';
import { answer, CharCodec, EOS, FACTS, MASK, VOCAB, holeStartAfter, tok } from './engine-mocks';

/**
 * The seeds below were chosen for the rows they sample; the cache n-gram model (on by default, tested in
 * engine-ngram-cache.test.ts) would mix the prompt's own characters into those draws.
 */
const samplerOptions = (overrides: Partial<SamplerOptions>): SamplerOptions => resolveSamplerOptions({ cacheNgram: false, ...overrides });

const MODULES = path.resolve(__dirname, '../../node_modules');
const locate = (file: string): string =>
  file === RUNTIME_FILE ? path.join(MODULES, 'web-tree-sitter', file) : path.join(MODULES, '@vscode/tree-sitter-wasm/wasm', file);

/**
 * A model of the canvas alone (as a real one is): the hole's first position chooses among the texts by their first
 * characters, with logit strengths[i] for texts[i]; once it is committed, the rest of the hole writes the chosen text
 * surely and then ends the span. While the first position is still masked the others surely end the span, which the
 * end-of-span-after-code rule holds back until their left neighbours are written, so they wait for it. The greedy row takes the strongest text; rows sampled at the alternatives' temperature take the others
 * as often as their strengths allow, so which texts a seed yields is fixed but not chosen by the test.
 */
function branchingModel(start: number, texts: string[], strengths: number[]): ModelFn {
  return async (input) => {
    const out = new Float32Array(input.batch * input.numPositions * VOCAB);
    for (let r = 0; r < input.batch; r++) {
      const first = input.ids[r * input.seqLen + start];
      const text = texts.find((t) => tok(t[0]) === first);
      for (let j = 0; j < input.numPositions; j++) {
        const logits = out.subarray((r * input.numPositions + j) * VOCAB, (r * input.numPositions + j + 1) * VOCAB);
        const i = input.positions[r * input.numPositions + j] - start;
        if (i === 0) texts.forEach((t, k) => (logits[tok(t[0])] = strengths[k]));
        else if (text === undefined) logits[EOS] = 12;
        else logits[i < text.length ? tok(text[i]) : EOS] = 12;
      }
    }
    return answer(out);
  };
}

describe('ranked completions (the candidates request and explicit inline requests)', () => {
  const prefix = 'def f(x):\n    return ';
  const suffix = '\n';
  // Row 0 is the likelier one but leaves the expression unfinished; row 1 parses.
  const model = { run: branchingModel(holeStartAfter(prefix.length), ['x +', '1 + x'], [10, 9]), codec: new CharCodec(), facts: FACTS };
  // Seed 4 is one whose sampled row takes the weaker text (branchingModel), so the two candidates differ.
  const options = samplerOptions({ candidates: 2, steps: 4, seed: 4 });
  const logs: string[] = [];
  const log = (line: string): number => logs.push(line);
  const checker = new SyntaxChecker(locate, log);
  after(() => checker.dispose());

  it('puts the candidate that parses first, with the syntax errors of each', async () => {
    const query = { prefix, suffix, languageId: 'python', maxTokens: 8 };
    const { candidates, result } = await rankedCompletions(model, query, { before: prefix, after: suffix }, options, {}, checker, log);
    assert.deepEqual(candidates.map((c) => [c.text, c.syntaxErrors]), [['1 + x', 0], ['x +', 1]]);
    assert.ok(candidates[0].score > candidates[1].score);
    assert.ok(candidates[0].logProb / candidates[0].tokens < candidates[1].logProb / candidates[1].tokens, 'the broken one is likelier');
    assert.ok(result.modelCalls >= 1 && result.modelCalls <= 4, 'both rows come from one generation of at most 4 steps');
  });

  it('names the engine row of each ranked candidate, whose canvas the reward model scores', async () => {
    const query = { prefix, suffix, languageId: 'python', maxTokens: 8 };
    const { candidates, result, rows } = await rankedCompletions(model, query, { before: prefix, after: suffix }, options, {}, checker, log);
    assert.equal(rows.length, candidates.length);
    assert.deepEqual(rows.map((r) => result.candidates[r].holes[0].trim()), candidates.map((c) => c.text.trim()));
    assert.notEqual(rows[0], rows[1]);
  });

  it('hands the gate the first candidate, and the copy typing puts in front of it', async () => {
    const query = { prefix, suffix, languageId: 'python', maxTokens: 8 };
    const ranked = await rankedCompletions(model, query, { before: prefix, after: suffix }, options, {}, checker, log);
    assert.equal(ranked.best?.text, '1 + x', 'the first candidate, not the likeliest row');
    assert.equal(ranked.best?.agreement, 0, 'the two rows wrote different lines');
    assert.ok(ranked.best!.firstLine.tokens > 0 && ranked.best!.firstLine.minConfidence > 0);
    const alone = withCopyCandidate(ranked, { before: prefix, after: suffix });
    assert.deepEqual([alone.candidates[0].text, alone.gate?.source, alone.gate?.copyRun, alone.gate?.midLine], ['1 + x', 'model', 0, true]);
    // The file has '(x):\n    return ' (16 characters) before '1 + x' elsewhere: a copy the first candidate agrees with.
    const inline = withCopyCandidate(ranked, { before: `def g(x):\n    return 1 + x\n\n${prefix}`, after: suffix });
    assert.equal(inline.candidates[0].text, '1 + x');
    assert.deepEqual([inline.gate?.source, inline.gate?.copyRun, inline.gate?.copyAgrees], ['copy', 16, true]);
    assert.equal(withCopyCandidate({ candidates: [] }, { before: prefix, after: suffix }).gate, undefined, 'nothing to show');
  });

  it('ranks by likelihood alone for a language without a parser', async () => {
    const query = { prefix, suffix, languageId: 'plaintext', maxTokens: 8 };
    const { candidates } = await rankedCompletions(model, query, { before: prefix, after: suffix }, options, {}, checker, log);
    assert.deepEqual(candidates.map((c) => [c.text, c.syntaxErrors]), [['x +', undefined], ['1 + x', undefined]]);
  });

  it('checks the whole file around the position, not the model window', async () => {
    const seen: unknown[] = [];
    const spy = {
      errorsWithInsertions: async (languageId: string, before: string, afterText: string, texts: readonly string[]) => {
        seen.push({ languageId, before, after: afterText, texts });
        return texts.map(() => 0);
      },
    };
    const file = { before: `import os\n\n\n${prefix}`, after: `${suffix}\n\nprint(f(1))\n` };
    await rankedCompletions(model, { prefix, suffix, languageId: 'python', maxTokens: 8 }, file, options, {}, spy, log);
    assert.deepEqual(seen, [{ languageId: 'python', ...file, texts: ['x +', '1 + x'] }]);
  });

  it('keeps the candidates, ranked by likelihood, when the syntax check fails, and logs why', async () => {
    const failing = { errorsWithInsertions: async () => Promise.reject(new Error('out of memory')) };
    const { candidates } = await rankedCompletions(model, { prefix, suffix, languageId: 'python', maxTokens: 8 }, { before: prefix, after: suffix }, options, {}, failing, log);
    assert.deepEqual(candidates.map((c) => c.text), ['x +', '1 + x']);
    assert.ok(logs.some((l) => l.includes('checking 2 candidate(s) failed (out of memory)')), logs.join('\n'));
  });
});

/**
 * A mock discriminator: each span position scores `hit` when the candidate's canvas holds `favoured` there and -1
 * otherwise (so a row's mean reward counts how much of its span is that character). Records every call.
 */
function mockDiscriminator(favoured: string, hit: number) {
  const calls: DiscriminatorInput[] = [];
  return {
    calls,
    tClean: 0.05,
    async score(input: DiscriminatorInput): Promise<Float32Array> {
      calls.push({ ...input, ids: input.ids.slice(), positions: input.positions.slice(), t: input.t.slice() });
      const out = new Float32Array(input.batch * input.numPositions);
      for (let r = 0; r < input.batch; r++) {
        for (let j = 0; j < input.numPositions; j++) {
          const id = input.ids[r * input.seqLen + input.positions[r * input.numPositions + j]];
          out[r * input.numPositions + j] = id === tok(favoured) ? hit : -1;
        }
      }
      return out;
    },
  };
}

describe('the canvas a reward model scores', () => {
  it('holds end-of-span after the first one in each hole, and leaves the rest of the canvas alone', () => {
    const canvas = Int32Array.from([1, 2, 5, EOS, 7, 8, 3, 9, EOS, 4, EOS, 6, 7]);
    const holes = [{ start: 2, length: 4 }, { start: 7, length: 5 }];
    assert.deepEqual(Array.from(asInserted(canvas, holes, EOS)), [1, 2, 5, EOS, EOS, EOS, 3, 9, EOS, EOS, EOS, EOS, 7]);
    assert.deepEqual(Array.from(canvas), [1, 2, 5, EOS, 7, 8, 3, 9, EOS, 4, EOS, 6, 7], 'the candidate keeps its own canvas');
  });

  it('leaves a hole without end-of-span as it is', () => {
    const canvas = Int32Array.from([1, 5, 6, 7, 2]);
    assert.deepEqual(Array.from(asInserted(canvas, [{ start: 1, length: 3 }], EOS)), [1, 5, 6, 7, 2]);
  });
});

describe('ranked completions with a discriminator (the learned reward)', () => {
  const prefix = 'def f(x):\n    return ';
  const suffix = '\n';
  const start = holeStartAfter(prefix.length);
  const run = branchingModel(start, ['x +', '1 + x'], [10, 9]);
  // plaintext has no parser: without a reward the likelier 'x +' ranks first (the test above).
  const query = { prefix, suffix, languageId: 'plaintext', maxTokens: 8 };
  const file = { before: prefix, after: suffix };
  const noSyntax = { errorsWithInsertions: async () => undefined };
  const logs: string[] = [];
  const log = (line: string): number => logs.push(line);

  it('ranks by the reward added to the likelihood, with each candidate\'s mean score over its span', async () => {
    const discriminator = mockDiscriminator('1', 15);
    const model = { run, codec: new CharCodec(), facts: FACTS, discriminator };
    const { candidates } = await rankedCompletions(model, query, file, samplerOptions({ candidates: 2, steps: 4, seed: 4 }), {}, noSyntax, log);
    // The span is one bucket of 8 positions: '1 + x' holds one '1' ((15 - 7) / 8 = 1), 'x +' none (-1).
    assert.deepEqual(candidates.map((c) => [c.text, c.reward]), [['1 + x', 1], ['x +', -1]]);
    assert.ok(candidates[0].score > candidates[1].score);
  });

  it('scores all the candidates\' finished canvases in one call, at t_clean, over the span positions', async () => {
    // Seed 3 is one whose three sampled rows take the three texts the greedy row does not.
    const texts = ['a', 'bb', 'ccc', 'dddd'];
    const discriminator = mockDiscriminator('d', 3);
    const model = { run: branchingModel(start, texts, [9, 9, 9, 9]), codec: new CharCodec(), facts: FACTS, discriminator };
    const { candidates } = await rankedCompletions(model, query, file, samplerOptions({ candidates: 4, steps: 2, seed: 3 }), {}, noSyntax, log);
    assert.equal(discriminator.calls.length, 1, 'one batched call');
    const [call] = discriminator.calls;
    assert.equal(call.batch, 4);
    assert.deepEqual(call.t, new Float32Array(4).fill(0.05));
    const span = Array.from({ length: 8 }, (_, k) => start + k);
    assert.equal(call.numPositions, 8);
    assert.deepEqual([...call.positions], [...span, ...span, ...span, ...span]);
    // Each row is a finished canvas: the prompt around the span, the candidate's text in it, no mask left.
    const codec = new CharCodec();
    const rows = Array.from({ length: 4 }, (_, r) => call.ids.subarray(r * call.seqLen, (r + 1) * call.seqLen));
    const spanTexts = rows.map((row) => codec.decode([...row.subarray(start, start + 8)].filter((id) => id !== EOS)));
    assert.deepEqual([...spanTexts].sort(), texts);
    assert.ok(rows.every((row) => !row.includes(MASK)));
    assert.ok(rows.every((row) => codec.decode([...row.subarray(start - prefix.length, start)]) === prefix));
    assert.equal(candidates[0].text, 'dddd', 'the reward favours the row of d');
  });

  it('ranks without the reward when the discriminator fails, and logs why', async () => {
    const discriminator = { tClean: 0.05, score: async () => Promise.reject(new Error('the inference worker exited')) };
    const model = { run, codec: new CharCodec(), facts: FACTS, discriminator };
    const { candidates } = await rankedCompletions(model, query, file, samplerOptions({ candidates: 2, steps: 4, seed: 4 }), {}, noSyntax, log);
    assert.deepEqual(candidates.map((c) => [c.text, c.reward]), [['x +', undefined], ['1 + x', undefined]]);
    assert.ok(logs.includes('discriminator: scoring 2 candidate(s) failed (the inference worker exited); ranking without it'), logs.join('\n'));
  });
});

/**
 * branchingModel for several holes: the first position of the first hole chooses a plan (one text per hole) by its
 * first character, with logit strengths[i] for plans[i]; once it is committed, every hole surely writes its text of
 * that plan and then ends its span. `starts` are the first canvas positions of its two holes.
 */
function branchingHolesModel(starts: number[], plans: string[][], strengths: number[]): ModelFn {
  return async (input) => {
    const out = new Float32Array(input.batch * input.numPositions * VOCAB);
    for (let r = 0; r < input.batch; r++) {
      const first = input.ids[r * input.seqLen + starts[0]];
      const plan = plans.find((p) => tok(p[0][0]) === first);
      for (let j = 0; j < input.numPositions; j++) {
        const logits = out.subarray((r * input.numPositions + j) * VOCAB, (r * input.numPositions + j + 1) * VOCAB);
        const position = input.positions[r * input.numPositions + j];
        const hole = position >= starts[1] ? 1 : 0;
        const i = position - starts[hole];
        if (hole === 0 && i === 0) plans.forEach((p, k) => (logits[tok(p[0][0])] = strengths[k]));
        else if (plan === undefined) logits[EOS] = 12;
        else logits[i < plan[hole].length ? tok(plan[hole][i]) : EOS] = 12;
      }
    }
    return answer(out);
  };
}

/** Seed 4 is one whose sampled row takes the weaker plan (branchingHolesModel), so the two rows differ. */
const SEED = 4;

describe('the best joint fill of several holes (Fill All Holes)', () => {
  const segments = ['a = ', '\nb = ', '\n'];
  // The canvas: prefix, 8 masks (the smallest bucket), the middle segment, 8 masks, the suffix.
  const starts = [holeStartAfter(segments[0].length), holeStartAfter(segments[0].length) + 8 + segments[1].length];
  const request = { segments, holes: [{ maxTokens: 8 }, { maxTokens: 8 }], languageId: 'python' };
  const logs: string[] = [];
  const log = (line: string): number => logs.push(line);
  const checker = new SyntaxChecker(locate, log);
  after(() => checker.dispose());
  const fill = (plans: string[][], seed: number, syntax: Pick<SyntaxChecker, 'errorsWithFills'> = checker) =>
    bestHoleFill(
      { run: branchingHolesModel(starts, plans, [10, 9]), codec: new CharCodec(), facts: FACTS },
      request,
      samplerOptions({ candidates: 2, steps: 16, seed }),
      {},
      syntax,
      log,
    );

  it('prefers the row that fills every hole over a likelier one that leaves a hole blank', async () => {
    const result = await fill([['x', ' '], ['y', 'z']], SEED);
    assert.equal(result.result.candidates.length, 2, 'both plans were generated');
    assert.deepEqual(result.texts, ['y', 'z']);
    assert.equal(result.blankHoles, 0);
  });

  it('prefers the fill that parses over a likelier broken one', async () => {
    const result = await fill([['x +', '1'], ['y', '2']], SEED);
    assert.deepEqual(result.texts, ['y', '2']);
  });

  it('keeps the likelier fill when the syntax check fails, and logs why', async () => {
    const failing = { errorsWithFills: async () => Promise.reject(new Error('out of memory')) };
    const result = await fill([['x +', '1'], ['y', '2']], SEED, failing);
    assert.deepEqual(result.texts, ['x +', '1']);
    assert.ok(logs.some((l) => l.includes('checking 2 hole fill(s) failed (out of memory)')), logs.join('\n'));
  });
});
