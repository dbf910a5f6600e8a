import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allocateBudget, buildCanvas, languageTagFor, spanLengthFor } from '../../server/engine/canvas';
import { CanvasError, OptionsError } from '../../server/engine/errors';
import type { InfillRequest } from '../../server/engine/types';
import { CharCodec, FACTS, MASK, tok } from './engine-mocks';

const codec = new CharCodec();
const oneHole = (prefix: string, suffix: string, maxTokens = 8, languageId = 'python'): InfillRequest => ({
  segments: [prefix, suffix],
  holes: [{ maxTokens }],
  languageId,
});
const textOf = (ids: ArrayLike<number>): string => codec.decode(Array.from(ids));

describe('the canvas', () => {
  it('lays out the language tag, the prefix, the masks and the suffix', () => {
    const canvas = buildCanvas(codec, FACTS, oneHole('ab', 'cd'), 100);
    assert.deepEqual(Array.from(canvas.ids), [4, tok('a'), tok('b'), ...Array(8).fill(MASK), tok('c'), tok('d')]);
    assert.deepEqual(canvas.holes, [{ start: 3, length: 8, requestedTokens: 8 }]);
    assert.equal(canvas.contextTokens, 4);
    assert.equal(canvas.droppedTokens, 0);
  });

  it('rounds a span up to the next bucket, and down to the largest bucket when none is long enough', () => {
    assert.equal(spanLengthFor(1, FACTS.spanBuckets), 8);
    assert.equal(spanLengthFor(9, FACTS.spanBuckets), 16);
    assert.equal(spanLengthFor(32, FACTS.spanBuckets), 32);
    assert.equal(spanLengthFor(500, FACTS.spanBuckets), 128);
    assert.equal(buildCanvas(codec, FACTS, oneHole('', '', 20), 0).holes[0].length, 32);
  });

  it('accepts an empty prefix and an empty suffix', () => {
    const canvas = buildCanvas(codec, FACTS, oneHole('', ''), 100);
    assert.deepEqual(Array.from(canvas.ids), [4, ...Array(8).fill(MASK)]);
    assert.equal(canvas.holes[0].start, 1);
  });

  const languages: [string, string][] = [
    ['python', 'python'],
    ['typescriptreact', 'typescript'],
    ['javascriptreact', 'javascript'],
    ['TypeScript', 'typescript'],
    ['cobol', 'other'],
    ['constructor', 'other'],
  ];
  for (const [languageId, tag] of languages) {
    it(`tags language "${languageId}" as "${tag}"`, () => {
      assert.equal(languageTagFor(languageId, FACTS.langIds).tag, tag);
    });
  }

  it('prefers a model tag of its own for typescriptreact over the alias', () => {
    assert.deepEqual(languageTagFor('typescriptreact', { typescript: 5, typescriptreact: 9, other: 7 }), { tag: 'typescriptreact', id: 9 });
  });

  it('fails clearly when the language is unknown and the model has no "other" tag', () => {
    assert.throws(() => languageTagFor('cobol', { python: 4 }), CanvasError);
  });

  it('keeps the text nearest the cursor when the context is too long: the end of the prefix and the start of the suffix', () => {
    const prefix = 'x'.repeat(500) + 'NEAR-PREFIX';
    const suffix = 'NEAR-SUFFIX' + 'y'.repeat(500);
    const canvas = buildCanvas(codec, FACTS, oneHole(prefix, suffix), 44);
    const { start, length } = canvas.holes[0];
    assert.equal(canvas.contextTokens, 44);
    assert.equal(textOf(canvas.ids.subarray(1, start)), 'x'.repeat(22) + 'NEAR-PREFIX');
    assert.equal(textOf(canvas.ids.subarray(start + length)), 'NEAR-SUFFIX');
    assert.ok(canvas.droppedTokens > 900);
  });

  it('gives the prefix three quarters of the budget and hands what one side does not need to the other', () => {
    const long = 'z'.repeat(1000);
    assert.equal(buildCanvas(codec, FACTS, oneHole(long, long), 100).holes[0].start, 1 + 75);
    assert.equal(buildCanvas(codec, FACTS, oneHole(long, 'short'), 100).holes[0].start, 1 + 95);
    assert.equal(buildCanvas(codec, FACTS, oneHole('short', long), 100).contextTokens, 100);
  });

  it('never exceeds the model maximum, tag and masks included, whatever context is asked for', () => {
    const long = 'z'.repeat(5000);
    const canvas = buildCanvas(codec, FACTS, oneHole(long, long, 128), 100000);
    assert.equal(canvas.ids.length, FACTS.maxSeqLen);
  });

  it('encodes only a bounded part of a huge file', () => {
    const counting = new CharCodec();
    buildCanvas(counting, FACTS, oneHole('p'.repeat(2_000_000), 's'.repeat(2_000_000)), 64);
    assert.ok(counting.encodedChars < 20000, `encoded ${counting.encodedChars} characters`);
  });

  it('interleaves several holes with the text between them', () => {
    const canvas = buildCanvas(codec, FACTS, { segments: ['a', 'b', 'c'], holes: [{ maxTokens: 8 }, { maxTokens: 16 }], languageId: 'python' }, 100);
    assert.deepEqual(canvas.holes, [
      { start: 2, length: 8, requestedTokens: 8 },
      { start: 11, length: 16, requestedTokens: 16 },
    ]);
    assert.deepEqual(Array.from(canvas.ids), [4, tok('a'), ...Array(8).fill(MASK), tok('b'), ...Array(16).fill(MASK), tok('c')]);
  });

  it('keeps both ends of a long segment between two holes', () => {
    const between = 'HEAD' + 'm'.repeat(400) + 'TAIL';
    const canvas = buildCanvas(codec, FACTS, { segments: ['', between, ''], holes: [{ maxTokens: 8 }, { maxTokens: 8 }], languageId: 'python' }, 20);
    const [first, second] = canvas.holes;
    const kept = textOf(canvas.ids.subarray(first.start + first.length, second.start));
    assert.equal(kept, 'HEAD' + 'm'.repeat(12) + 'TAIL');
  });

  it('refuses holes that do not fit the model with a message that names the sizes', () => {
    const request: InfillRequest = { segments: ['', '', '', ''], holes: [{ maxTokens: 128 }, { maxTokens: 128 }, { maxTokens: 8 }], languageId: 'python' };
    assert.throws(() => buildCanvas(codec, FACTS, request, 0), (error: unknown) => error instanceof CanvasError && /265 tokens.*256/.test(error.message));
  });

  it('refuses malformed requests with every problem named', () => {
    assert.throws(
      () => buildCanvas(codec, FACTS, { segments: ['only one'], holes: [{ maxTokens: 0 }], languageId: 'python' }, 10),
      (error: unknown) => error instanceof OptionsError && error.problems.length === 2,
    );
    assert.throws(() => buildCanvas(codec, FACTS, { segments: [''], holes: [], languageId: 'python' }, 10), OptionsError);
  });

  it('drops special tokens that a tokenizer finds in the text, so the context never holds a mask', () => {
    const parsing = new CharCodec();
    parsing.encode = (text) => (text === 'x<mask>' ? [tok('x'), MASK] : Array.from(text, tok));
    const canvas = buildCanvas(parsing, FACTS, oneHole('x<mask>', ''), 100);
    assert.deepEqual(Array.from(canvas.ids.subarray(0, 2)), [4, tok('x')]);
    assert.equal(canvas.holes[0].start, 2);
  });
});

describe('sharing the context budget', () => {
  const cases: [string, number[], number[], number, number[]][] = [
    ['everything fits', [10, 5], [3, 1], 100, [10, 5]],
    ['both sides are long', [1000, 1000], [3, 1], 100, [75, 25]],
    ['a short suffix leaves its share to the prefix', [1000, 4], [3, 1], 100, [96, 4]],
    ['a short prefix leaves its share to the suffix', [3, 1000], [3, 1], 100, [3, 97]],
    ['rounding leftovers go to the prefix first', [1000, 1000], [3, 1], 10, [8, 2]],
    ['a zero budget keeps nothing', [10, 10], [3, 1], 0, [0, 0]],
    ['empty segments get nothing', [0, 0, 50], [3, 2, 1], 30, [0, 0, 30]],
    ['three segments share by weight', [900, 900, 900], [3, 2, 1], 60, [30, 20, 10]],
  ];
  for (const [name, lengths, weights, budget, expected] of cases) {
    it(`works when ${name}`, () => {
      const granted = allocateBudget(lengths, weights, budget);
      assert.deepEqual(granted, expected);
      assert.ok(granted.reduce((a, b) => a + b, 0) <= budget);
    });
  }
});
