/**
 * Token healing (server/engine/healing.ts): the rule on the fixture shared with the recipe's sample.py, and infill with
 * a word-level mock tokenizer whose prefix can end inside a token, against a mock model that, like the real one, only
 * makes sense of a span that starts at a token boundary.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { buildCanvas } from '../../server/engine/canvas';
import { OptionsError } from '../../server/engine/errors';
import { afterPartial, healTail } from '../../server/engine/healing';
import { infill } from '../../server/engine/infill';
import { resolveSamplerOptions } from '../../server/engine/options';
import { sampleCanvas } from '../../server/engine/sampler';
import { bannedTokenIds } from '../../server/engine/special-tokens';
import type { InfillRequest, KBest, ModelFacts, ModelFn, SamplerOptions, TextCodec } from '../../server/engine/types';
import { kbestFromLogits } from '../fixtures/kbest';
import { CHAR_BASE, EOS, FACTS, MASK } from './engine-mocks';

// ---------------------------------------------------------------------------------------------------------------
// The shared fixture: the same cases run through sample.py in models/recipe/tests/test_eval.py.
// ---------------------------------------------------------------------------------------------------------------

interface Fixture {
  vocab: (string | { bytes: number[] } | null)[];
  heal: { name: string; text: string; tokens: number[]; expect: { partial: string; fallback: number[]; ids: number[] } | null }[];
  chain: { name: string; text: string; tokens: number[]; lists: [number, number][][]; expect: { tokens: number[]; fell_back: boolean } }[];
}

const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'healing-cases.json'), 'utf8')) as Fixture;
const fixtureBytes = fixture.vocab.map((entry) =>
  entry === null ? new Uint8Array(0) : typeof entry === 'string' ? new TextEncoder().encode(entry) : Uint8Array.from(entry.bytes),
);
const decodeFixture = (ids: readonly number[]): string => {
  const bytes = ids.flatMap((id) => Array.from(fixtureBytes[id]));
  return new TextDecoder('utf-8').decode(Uint8Array.from(bytes));
};
const fixturePieces = fixture.vocab.map((entry, id) => (entry === null ? '' : decodeFixture([id])));

describe('token healing: the rule shared with sample.py', () => {
  for (const c of fixture.heal) {
    it(c.name, () => {
      const rule = healTail(c.tokens, c.text, decodeFixture, fixturePieces);
      if (c.expect === null) return assert.equal(rule, undefined);
      assert.ok(rule);
      assert.deepEqual({ partial: rule.partial, fallback: [...rule.fallback], ids: [...rule.ids] }, c.expect);
      assert.deepEqual(rule.texts, rule.ids.map((id) => fixturePieces[id]));
    });
  }

  for (const c of fixture.chain) {
    it(`chain: ${c.name}`, async () => {
      const rule = healTail(c.tokens, c.text, decodeFixture, fixturePieces)!;
      const kept = c.tokens.slice(0, c.tokens.length - rule.fallback.length);
      const start = 1 + kept.length;
      const canvas = { ids: Int32Array.from([3, ...kept, ...Array(8).fill(1)]), holes: [{ start, length: 8 }] };
      const k = Math.max(...c.lists.map((list) => list.length));
      const model: ModelFn = async (input) => {
        const slots = input.batch * input.numPositions;
        const out: KBest = { k, logits: new Float32Array(slots * k).fill(-Infinity), ids: new Int32Array(slots * k), logZ: new Float32Array(slots).fill(6), allowed: fixture.vocab.length - 3 };
        for (let s = 0; s < slots; s++) {
          const list = c.lists[input.positions[s] - start] ?? [[2, 5]];
          list.forEach(([id, logit], e) => {
            out.ids[s * k + e] = id;
            out.logits[s * k + e] = logit;
          });
        }
        return out;
      };
      const config = {
        steps: 8,
        strategy: 'confidence' as const,
        confidenceThreshold: 0,
        topP: 1,
        temperatures: [0],
        seed: 0,
        vocabSize: fixture.vocab.length,
        eosId: 2,
        eosFill: true,
        eosAfterCode: true,
        bannedIds: [0, 1, 3],
        firstTokens: [rule],
      };
      const result = await sampleCanvas(model, canvas, config);
      const span = Array.from(result.rows[0].subarray(start, start + 8));
      const text = span.slice(0, span.indexOf(2));
      const chainCommits = result.commits[0].filter((commit) => commit.index < c.expect.tokens.length);
      assert.deepEqual({ tokens: text, fell_back: chainCommits.every((commit) => commit.filled) }, c.expect);
      assert.ok(chainCommits.every((commit) => commit.step === 0), 'the chain is decided in the first step');
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// A word-level mock tokenizer: the characters of engine-mocks.ts plus a few words, encoded greedily longest first.
// ---------------------------------------------------------------------------------------------------------------

const WORDS = ['self', '.marks', '.append', '(token', '.start', '_', 'ma', 'mark', 'marks', 'max', ' True', ' = x.'];
const WORD_BASE = CHAR_BASE + 128;
const V = WORD_BASE + WORDS.length;
const WORD_FACTS: ModelFacts = Object.freeze({ ...FACTS, vocabSize: V });
const word = (w: string): number => WORD_BASE + WORDS.indexOf(w);
const ch = (c: string): number => CHAR_BASE + c.charCodeAt(0);

class WordCodec implements TextCodec {
  encode(text: string): number[] {
    const ids: number[] = [];
    for (let at = 0; at < text.length; ) {
      const longest = WORDS.filter((w) => text.startsWith(w, at)).sort((a, b) => b.length - a.length)[0];
      if (longest) {
        ids.push(word(longest));
        at += longest.length;
      } else ids.push(ch(text[at++]));
    }
    return ids;
  }

  decode(ids: readonly number[]): string {
    return ids.map((id) => this.piece(id)).join('');
  }

  pieces(): readonly string[] {
    return Array.from({ length: V }, (_, id) => this.piece(id));
  }

  private piece(id: number): string {
    if (id >= WORD_BASE) return WORDS[id - WORD_BASE];
    return id >= CHAR_BASE ? String.fromCharCode(id - CHAR_BASE) : '';
  }
}

const codec = new WordCodec();
const K = 32;

/**
 * A mock model over the word vocabulary: `prefer(row, offset)` gives the logits it raises at a span position, `offset`
 * being the position's index in its hole; everything else is 0. Records every canvas row it is called with.
 */
function wordModel(prefer: (row: Int32Array, offset: number, hole: number) => [number, number][]): { model: ModelFn; canvases: Int32Array[] } {
  const canvases: Int32Array[] = [];
  const model: ModelFn = async (input) => {
    const logits = new Float32Array(input.batch * input.numPositions * V);
    for (let r = 0; r < input.batch; r++) {
      const row = input.ids.subarray(r * input.seqLen, (r + 1) * input.seqLen);
      canvases.push(row.slice());
      for (let j = 0; j < input.numPositions; j++) {
        const position = input.positions[r * input.numPositions + j];
        const hole = input.holes.findIndex((h) => position >= h.start && position < h.start + h.length);
        for (const [token, strength] of prefer(row, position - input.holes[hole].start, hole)) {
          logits[(r * input.numPositions + j) * V + token] = strength;
        }
      }
    }
    return kbestFromLogits(logits, V, K, bannedTokenIds(WORD_FACTS));
  };
  return { model, canvases };
}

/**
 * Like a model trained on spans that start at token boundaries: after `_` it writes the word `marks`, then `)`; right
 * after a partial `ma` it answers noise (` True`).
 */
function boundaryModel(): { model: ModelFn; canvases: Int32Array[] } {
  return wordModel((row, offset) => {
    if (offset === 0) {
      // The position is masked, so the row's first mask starts the hole.
      return row[row.indexOf(MASK) - 1] === word('_') ? [[word('marks'), 10], [word(' True'), 4]] : [[word(' True'), 10]];
    }
    if (offset === 1) return [[ch(')'), 10]];
    return [[EOS, 10]];
  });
}

const PREFIX = 'self.marks.append(token.start_ma';
const request = (segments: string[]): InfillRequest => ({ segments, holes: segments.slice(1).map(() => ({ maxTokens: 8 })), languageId: 'python' });
const options = (overrides: Partial<SamplerOptions> = {}): SamplerOptions => resolveSamplerOptions({ eosFill: true, ...overrides });

describe('token healing in infill', () => {
  it('completes the identifier when the prefix ends inside one, and returns only what goes after the cursor', async () => {
    const healed = await infill(boundaryModel().model, codec, WORD_FACTS, request([PREFIX, '\n']), options());
    assert.deepEqual(healed.candidates[0].holes, ['rks)']);
    assert.deepEqual(healed.healed, ['ma']);
    assert.equal(codec.decode(healed.candidates[0].tokenIds[0]), 'marks)', 'the span holds the whole word');

    const unhealed = await infill(boundaryModel().model, codec, WORD_FACTS, request([PREFIX, '\n']), options({ tokenHealing: false }));
    assert.deepEqual(unhealed.candidates[0].holes, [' True)'], 'without healing the model sees a shape it never learned');
    assert.deepEqual(unhealed.healed, ['']);
  });

  it('backs the canvas up over the partial token and constrains only the first position of the hole', () => {
    const canvas = buildCanvas(codec, WORD_FACTS, request([PREFIX, '\n']), 100, true);
    const plain = buildCanvas(codec, WORD_FACTS, request([PREFIX, '\n']), 100, false);
    assert.deepEqual(Array.from(canvas.ids.subarray(0, canvas.holes[0].start)), Array.from(plain.ids.subarray(0, plain.holes[0].start - 1)));
    assert.equal(plain.ids[plain.holes[0].start - 1], word('ma'));
    assert.equal(canvas.droppedTokens, 0, 'the healed token is not counted as windowed out');
    const healing = canvas.healing[0]!;
    assert.equal(healing.partial, 'ma');
    assert.deepEqual(healing.fallback, [word('ma')]);
    assert.deepEqual(
      healing.ids.map((id) => healing.texts[healing.ids.indexOf(id)]),
      ['a', 'm', 'ma', 'mark', 'marks', 'max'],
      "every token that spells the partial's start or extends it: characters, then words",
    );
  });

  it('leaves a prefix that ends at a certain token boundary unchanged: the same canvases and the same completion', async () => {
    for (const prefix of ['self.marks.append(token.start_', 'x = (1)\n', 'x = y)']) {
      const on = boundaryModel();
      const off = boundaryModel();
      const healed = await infill(on.model, codec, WORD_FACTS, request([prefix, '\n']), options());
      const plain = await infill(off.model, codec, WORD_FACTS, request([prefix, '\n']), options({ tokenHealing: false }));
      assert.deepEqual(healed.healed, [''], prefix);
      assert.deepEqual(on.canvases, off.canvases, prefix);
      assert.deepEqual(healed.candidates.map((c) => c.holes), plain.candidates.map((c) => c.holes), prefix);
    }
  });

  it('falls back to the token that spells the partial when the K-best list holds none that extends it', async () => {
    // Only noise is liked; the words sort after every character, so none of them is among the K entries.
    const { model } = wordModel((_row, offset) => {
      if (offset === 0) return [[word(' True'), 10]];
      if (offset === 1) return [[ch('x'), 10]];
      return [[EOS, 10]];
    });
    const result = await infill(model, codec, WORD_FACTS, request([PREFIX, '\n']), options());
    const [best] = result.candidates;
    assert.deepEqual(best.holes, ['x'], 'the completion is what the model wrote after the partial');
    assert.equal(best.canvas[result.holes[0].start], word('ma'), 'the context reads as it would without healing');
    const first = result.trace.tokens.find((t) => t.index === 0)!;
    assert.equal(first.tokenId, word('ma'));
    assert.equal(first.filled, true, "the fallback is the sampler's commit, not the model's");
    assert.equal(first.step, 0, 'it goes in at the first step');
    assert.equal(result.trace.tokens.filter((t) => t.step === 0).length, 2, "besides the model's scheduled commit (x)");
    assert.equal(best.scoredTokens, 2, "the fallback is not scored: only 'x' and the end-of-span");
  });

  it('heals every hole of a joint fill, and every candidate row', async () => {
    // At every hole's first position the model likes noise best, then `marks`; end-of-span after.
    const { model } = wordModel((_row, offset) =>
      offset === 0 ? [[word(' True'), 10], [word('marks'), 6], [word('max'), 5]] : [[EOS, 10]],
    );
    const joint = await infill(model, codec, WORD_FACTS, request(['self.start_ma', ' = x.ma', '\n']), options());
    assert.deepEqual(joint.healed, ['ma', 'ma']);
    assert.deepEqual(joint.candidates[0].holes, ['rks', 'rks']);
    const firsts = joint.trace.tokens.filter((t) => t.index === 0);
    assert.deepEqual(firsts.map((t) => [t.step, t.filled]), [[0, false], [0, false]], 'decided first, by the model, however unsure');
    assert.ok(firsts.every((t) => t.confidence < 0.1));

    const sampled = await infill(model, codec, WORD_FACTS, request([PREFIX, '\n']), options({ candidates: 4, temperature: 1.5, seed: 3 }));
    assert.ok(sampled.candidates.length >= 1);
    for (const candidate of sampled.candidates) {
      const text = codec.decode(candidate.tokenIds[0]);
      assert.ok(text.startsWith('ma'), text);
      assert.equal(candidate.holes[0], afterPartial(text, 'ma'));
    }
  });

  it('is an option that is on by default and must be a boolean', () => {
    assert.equal(resolveSamplerOptions().tokenHealing, true);
    assert.throws(() => resolveSamplerOptions({ tokenHealing: 'yes' as unknown as boolean }), OptionsError);
  });

  it('refuses a first-token rule whose fallback the sampler may not commit', async () => {
    const canvas = { ids: Int32Array.of(4, MASK, MASK), holes: [{ start: 1, length: 2 }] };
    const config = {
      steps: 2,
      strategy: 'confidence' as const,
      confidenceThreshold: 0,
      topP: 1,
      temperatures: [0],
      seed: 0,
      vocabSize: V,
      eosId: EOS,
      eosFill: true,
      eosAfterCode: true,
      bannedIds: bannedTokenIds(WORD_FACTS),
      firstTokens: [{ partial: 'ma', ids: [word('ma')], texts: ['ma'], fallback: [EOS] }],
    };
    await assert.rejects(sampleCanvas(wordModel(() => []).model, canvas, config), OptionsError);
  });
});
