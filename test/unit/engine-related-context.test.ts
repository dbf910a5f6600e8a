import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildCanvas } from '../../server/engine/canvas';
import { infill } from '../../server/engine/infill';
import { newlineTest, snippetBudget } from '../../server/engine/related-context';
import { QUERY_TOKENS, selectSnippets } from '../../server/engine/related-snippets';
import type { InfillRequest, ModelFacts, TextCodec } from '../../server/engine/types';
import { CharCodec, EOS, FACTS, FILE_SEP, hashedModel, MASK, textModel, VOCAB } from './engine-mocks';

const codec = new CharCodec();
/** The mock model's facts plus the snippet layout of a model trained with it. */
const READS: ModelFacts = Object.freeze({ ...FACTS, relatedContext: Object.freeze({ layout: 'file_sep' as const, maxTokens: 128 }) });
const ids = (text: string): Int32Array => Int32Array.from(codec.encode(text));
const count = (values: ArrayLike<number>, id: number): number => Array.from(values).filter((v) => v === id).length;

const OTHER = 'def total(items):\n    result = 0\n    for item in items:\n        result += item.price\n    return result\n\n'.repeat(4);
const PREFIX = 'from shop import total\n\ndef checkout(cart):\n    result = 0\n    for item in cart.items:\n        result += ';
const request = (prefix = PREFIX, suffix = '\n    return result\n', sources: Int32Array[] = [ids(OTHER)]): InfillRequest => ({
  segments: [prefix, suffix],
  holes: [{ maxTokens: 8 }],
  languageId: 'python',
  snippetSources: sources,
});
const isNewline = (id: number): boolean => codec.decode([id]).includes('\n');

describe('snippets of other files in the canvas', () => {
  it('are never placed for a model without unmask.related_context: the canvas is exactly as before', () => {
    const plain = { ...request(), snippetSources: undefined };
    const canvas = buildCanvas(codec, FACTS, request(), 224, false, 64);
    assert.deepEqual(canvas, buildCanvas(codec, FACTS, plain, 224, false, 64));
    assert.equal(count(canvas.ids, FILE_SEP), 0);
    assert.equal(canvas.relatedTokens, 0);
  });

  it('go between the tag and the text as [FILE] chunk ... [FILE], the best last, chosen by the text before the hole', () => {
    const canvas = buildCanvas(codec, READS, request(), 224, false, 64);
    const prefix = codec.encode(PREFIX);
    const chunks = selectSnippets(Int32Array.from(prefix.slice(-QUERY_TOKENS)), [ids(OTHER)], isNewline, 64);
    assert.ok(chunks.length > 0, 'the other file shares the loop: a chunk is chosen');
    const snippets = [...chunks.flatMap((chunk) => [FILE_SEP, ...chunk]), FILE_SEP];
    const suffix = codec.encode('\n    return result\n');
    assert.deepEqual(Array.from(canvas.ids), [4, ...snippets, ...prefix, ...Array<number>(8).fill(MASK), ...suffix]);
    assert.equal(canvas.relatedTokens, snippets.length);
    assert.ok(canvas.relatedTokens <= 64);
    assert.deepEqual(canvas.holes, [{ start: 1 + snippets.length + prefix.length, length: 8, requestedTokens: 8 }]);
    assert.equal(canvas.contextTokens, prefix.length + suffix.length, 'the snippets are not counted as the text');
  });

  it('come out of the text budget, so a full canvas stays within max_seq_len', () => {
    const long = `${'x = 1\n'.repeat(200)}${PREFIX}`;
    const tail = '\n    return result\n'.repeat(100);
    const full = buildCanvas(codec, READS, { ...request(long, tail), holes: [{ maxTokens: 32 }] }, 224, false, 64);
    const room = Math.min(224, READS.maxSeqLen - 33);
    assert.equal(full.contextTokens, room - 64, 'the window kept 64 tokens for the snippets');
    assert.ok(full.relatedTokens > 0 && full.relatedTokens <= 64);
    assert.ok(full.ids.length <= READS.maxSeqLen);
    assert.equal(full.ids.length, 1 + full.relatedTokens + full.contextTokens + 32);
    // The hole sits right after the windowed prefix, which ends as the request's prefix does.
    assert.equal(codec.decode(Array.from(full.ids.subarray(full.holes[0].start - 8, full.holes[0].start))), PREFIX.slice(-8));
  });

  it('take at most the model\'s max_tokens and half the room, and nothing when turned off or without sources', () => {
    const small: ModelFacts = { ...READS, relatedContext: { layout: 'file_sep', maxTokens: 16 } };
    const capped = buildCanvas(codec, small, request(), 224, false, 64);
    assert.ok(capped.relatedTokens > 0 && capped.relatedTokens <= 16);
    const off = buildCanvas(codec, READS, request(), 224, false, 0);
    assert.equal(count(off.ids, FILE_SEP), 0);
    const none = buildCanvas(codec, READS, request(PREFIX, '\n', []), 224, false, 64);
    assert.equal(count(none.ids, FILE_SEP), 0);
    const long = buildCanvas(codec, READS, request('y = 2\n'.repeat(100), '\n', []), 224, false, 64);
    assert.equal(long.contextTokens, 224, 'no sources: the text keeps the whole budget');
  });

  it('leave the canvas as before when no chunk is similar enough, only shorter by what was kept for them', () => {
    const canvas = buildCanvas(codec, READS, request(PREFIX, '\n', [ids('QQQQ WWWW\nEEEE RRRR\n'.repeat(10))]), 224, false, 64);
    assert.equal(count(canvas.ids, FILE_SEP), 0);
    assert.equal(canvas.relatedTokens, 0);
    assert.equal(canvas.holes[0].start, 1 + PREFIX.length);
  });

  it('are chosen by the text before the first hole, with every hole after them', () => {
    const joint = (first: string, between: string): InfillRequest => ({
      segments: [first, between, '\n'],
      holes: [{ maxTokens: 8 }, { maxTokens: 16 }],
      languageId: 'python',
      snippetSources: [ids(OTHER)],
    });
    const unrelated = buildCanvas(codec, READS, joint('QQQQ WWWW\n', PREFIX), 224, false, 64);
    assert.equal(unrelated.relatedTokens, 0, 'what lies between the holes does not choose');
    const related = buildCanvas(codec, READS, joint(PREFIX, 'QQQQ\n'), 224, false, 64);
    assert.ok(related.relatedTokens > 0);
    assert.equal(related.holes[0].start, 1 + related.relatedTokens + PREFIX.length);
    assert.equal(related.holes[1].start, related.holes[0].start + 8 + 'QQQQ\n'.length);
    assert.deepEqual(
      Array.from(related.ids.subarray(related.holes[1].start, related.holes[1].start + 16)),
      Array<number>(16).fill(MASK),
    );
  });

  it('drop special and out-of-vocabulary ids from the sources: no mask or separator of theirs reaches the canvas', () => {
    const dirty = Int32Array.from([MASK, EOS, FILE_SEP, VOCAB + 5, ...ids(OTHER), MASK, -1]);
    const canvas = buildCanvas(codec, READS, request(PREFIX, '\n', [dirty]), 224, false, 64);
    assert.ok(canvas.relatedTokens > 0);
    assert.equal(count(canvas.ids, MASK), 8, 'masks only in the hole');
    assert.equal(count(canvas.ids, EOS), 0);
    assert.ok(Array.from(canvas.ids).every((id) => id >= 0 && id < VOCAB));
  });

  it('refuse sources that are not token id arrays', () => {
    const bad = { ...request(), snippetSources: [[1, 2, 3]] as unknown as Int32Array[] };
    assert.throws(() => buildCanvas(codec, READS, bad, 224, false, 64), /snippetSources must be a list of Int32Array/);
  });
});

describe('the budget kept for snippets', () => {
  it('is the caller\'s, capped by the model and half the room, and 0 when it could not hold one chunk', () => {
    assert.equal(snippetBudget(FACTS, 64, 223, 1), 0, 'no layout');
    assert.equal(snippetBudget(READS, 64, 223, 0), 0, 'no sources');
    assert.equal(snippetBudget(READS, 0, 223, 1), 0, 'turned off');
    assert.equal(snippetBudget(READS, 64, 223, 1), 64);
    assert.equal(snippetBudget(READS, 500, 1000, 1), 128, 'the model\'s max_tokens');
    assert.equal(snippetBudget(READS, 64, 40, 1), 20, 'half the room');
    assert.equal(snippetBudget(READS, 64, 19, 1), 0, '9 tokens hold no chunk of 8 with its two [FILE]s');
    assert.equal(snippetBudget(READS, 10, 223, 1), 10);
  });
});

describe('which ids end a line', () => {
  it('come from the codec\'s pieces when it lists them', () => {
    const listing: TextCodec = {
      encode: () => [],
      decode: () => {
        throw new Error('not called when pieces are listed');
      },
      pieces: () => ['a', 'b\n', '', '\r\n  '],
    };
    const test = newlineTest(listing);
    assert.deepEqual([0, 1, 2, 3, 4].map(test), [false, true, false, true, false]);
  });
});

describe('infill with snippets', () => {
  it('reports the canvas tokens they took, and the text of the hole is unaffected', async () => {
    const planned = buildCanvas(codec, READS, request(), 224, false, 64);
    assert.ok(planned.relatedTokens > 0);
    const { model, calls } = textModel(planned.holes[0].start, 'price');
    const options = { steps: 8, strategy: 'confidence' as const, confidenceThreshold: 0, temperature: 0, topP: 1, candidates: 1, seed: 0, contextTokens: 224, cacheNgram: false };
    const result = await infill(model, codec, READS, request(), options);
    assert.equal(result.relatedTokens, planned.relatedTokens);
    assert.equal(result.trace.relatedTokens, planned.relatedTokens);
    assert.equal(result.candidates[0].holes[0], 'price');
    assert.deepEqual(result.holes, [{ start: planned.holes[0].start, length: 8 }]);
    assert.equal(calls[0].ids[1], FILE_SEP);
    assert.ok(calls.every((call) => call.seqLen <= READS.maxSeqLen));
    assert.ok(result.trace.tokens.every((t) => t.hole === 0 && t.index < 8), 'the trace is hole-relative');
  });

  it('places none with relatedContextTokens 0, nor for a model without the layout', async () => {
    const options = { steps: 2, strategy: 'confidence' as const, confidenceThreshold: 0, temperature: 0, topP: 1, candidates: 1, seed: 0, contextTokens: 224 };
    for (const [facts, tokens] of [[READS, 0], [FACTS, 64]] as const) {
      const { model, calls } = hashedModel();
      const result = await infill(model, codec, facts, request(), { ...options, relatedContextTokens: tokens });
      assert.equal(result.relatedTokens, 0);
      assert.equal(count(calls[0].ids, FILE_SEP), 0);
    }
  });

  it('refuses a relatedContextTokens that is not a whole number of tokens', async () => {
    const options = { steps: 2, strategy: 'confidence' as const, confidenceThreshold: 0, temperature: 0, topP: 1, candidates: 1, seed: 0, contextTokens: 224 };
    await assert.rejects(infill(hashedModel().model, codec, READS, request(), { ...options, relatedContextTokens: -1 }), /relatedContextTokens must be an integer/);
    await assert.rejects(infill(hashedModel().model, codec, READS, request(), { ...options, relatedContextTokens: 1.5 }), /relatedContextTokens/);
  });
});
