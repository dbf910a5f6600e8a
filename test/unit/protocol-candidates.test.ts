import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { resolveSamplerOptions } from '../../server/engine/options';
import type { ModelFn } from '../../server/engine/types';
import { rankedCompletions } from '../../server/protocol/candidates';
import { RUNTIME_FILE, SyntaxChecker } from '../../server/runtime/syntax';
import { CharCodec, EOS, FACTS, VOCAB, holeStartAfter, tok } from './engine-mocks';

const MODULES = path.resolve(__dirname, '../../node_modules');
const locate = (file: string): string =>
  file === RUNTIME_FILE ? path.join(MODULES, 'web-tree-sitter', file) : path.join(MODULES, '@vscode/tree-sitter-wasm/wasm', file);

/** Batch row r writes texts[r] into the hole starting at canvas position `start`, with logit strengths[r]. */
function rowTextModel(start: number, texts: string[], strengths: number[]): ModelFn {
  return async (input) => {
    const out = new Float32Array(input.batch * input.numPositions * VOCAB);
    for (let r = 0; r < input.batch; r++) {
      for (let j = 0; j < input.numPositions; j++) {
        const i = input.positions[r * input.numPositions + j] - start;
        const text = texts[r];
        out[(r * input.numPositions + j) * VOCAB + (i >= 0 && i < text.length ? tok(text[i]) : EOS)] = strengths[r];
      }
    }
    return out;
  };
}

describe('ranked completions (the candidates request and explicit inline requests)', () => {
  const prefix = 'def f(x):\n    return ';
  const suffix = '\n';
  // Row 0 is the likelier one but leaves the expression unfinished; row 1 parses.
  const model = { run: rowTextModel(holeStartAfter(prefix.length), ['x +', 'x + 1'], [12, 8]), codec: new CharCodec(), facts: FACTS };
  const options = resolveSamplerOptions({ candidates: 2, steps: 4 });
  const logs: string[] = [];
  const log = (line: string): number => logs.push(line);
  const checker = new SyntaxChecker(locate, log);
  after(() => checker.dispose());

  it('puts the candidate that parses first, with the syntax errors of each', async () => {
    const query = { prefix, suffix, languageId: 'python', maxTokens: 8 };
    const { candidates, result } = await rankedCompletions(model, query, { before: prefix, after: suffix }, options, {}, checker, log);
    assert.deepEqual(candidates.map((c) => [c.text, c.syntaxErrors]), [['x + 1', 0], ['x +', 1]]);
    assert.ok(candidates[0].score > candidates[1].score);
    assert.ok(candidates[0].logProb / candidates[0].tokens < candidates[1].logProb / candidates[1].tokens, 'the broken one is likelier');
    assert.ok(result.modelCalls >= 1 && result.modelCalls <= 4, 'both rows come from one generation of at most 4 steps');
  });

  it('ranks by likelihood alone for a language without a parser', async () => {
    const query = { prefix, suffix, languageId: 'plaintext', maxTokens: 8 };
    const { candidates } = await rankedCompletions(model, query, { before: prefix, after: suffix }, options, {}, checker, log);
    assert.deepEqual(candidates.map((c) => [c.text, c.syntaxErrors]), [['x +', undefined], ['x + 1', undefined]]);
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
    assert.deepEqual(seen, [{ languageId: 'python', ...file, texts: ['x +', 'x + 1'] }]);
  });

  it('keeps the candidates, ranked by likelihood, when the syntax check fails, and logs why', async () => {
    const failing = { errorsWithInsertions: async () => Promise.reject(new Error('out of memory')) };
    const { candidates } = await rankedCompletions(model, { prefix, suffix, languageId: 'python', maxTokens: 8 }, { before: prefix, after: suffix }, options, {}, failing, log);
    assert.deepEqual(candidates.map((c) => c.text), ['x +', 'x + 1']);
    assert.ok(logs.some((l) => l.includes('checking 2 candidate(s) failed (out of memory)')), logs.join('\n'));
  });
});
