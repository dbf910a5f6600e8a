import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chooseChunks, chunkRanges, jaccard, MIN_SCORE, selectSnippets } from '../../server/engine/related-snippets';

const NL = 10;
const isNewline = (id: number): boolean => id === NL;
/** Token ids of a document: each row is a line, ended by the newline id. */
const lines = (...rows: number[][]): Int32Array => Int32Array.from(rows.flatMap((row) => [...row, NL]));
const repeat = <T>(row: T, n: number): T[] => Array.from({ length: n }, () => row);
const select = (query: number[], others: Int32Array[], budget: number): number[][] =>
  selectSnippets(Int32Array.from(query), others, isNewline, budget).map((chunk) => Array.from(chunk));

describe('the chunks of a document', () => {
  it('are 8 lines starting every 4 lines, the last one the first that reaches the last line', () => {
    const doc = lines(...Array.from({ length: 18 }, (_, i) => [20 + i])); // 18 lines of 2 tokens
    assert.deepEqual(chunkRanges(doc, isNewline), [[0, 16], [8, 24], [16, 32], [24, 36]]);
    assert.deepEqual(chunkRanges(lines(...repeat([20], 8)), isNewline), [[0, 16]], 'eight lines: one chunk');
    assert.deepEqual(chunkRanges(lines(...repeat([20], 10)), isNewline), [[0, 16], [8, 20]]);
  });

  it('end a line after every newline token; tokens after the last one form a final line', () => {
    const doc = Int32Array.from([20, 21, NL, 22, NL, NL, 23, 24]);
    // Lines: [20 21 NL] [22 NL] [NL] [23 24]: four lines, one chunk.
    assert.deepEqual(chunkRanges(doc, isNewline), [[0, 8]]);
    const nine = Int32Array.from([...lines(...repeat([20], 8)), 30, 31]);
    assert.deepEqual(chunkRanges(nine, isNewline), [[0, 16], [8, 18]]);
    assert.deepEqual(chunkRanges(new Int32Array(0), isNewline), []);
  });
});

describe('the score of a chunk', () => {
  it('is the Jaccard similarity of distinct ids', () => {
    assert.equal(jaccard(Int32Array.from([30, 31, 32, NL, 30, 31]), new Set([30, 31, 32])), 3 / 4);
    assert.equal(jaccard(Int32Array.from([1, 2]), new Set([3])), 0);
  });
});

describe('the snippets chosen', () => {
  const eight = lines(...repeat([30, 31, 32], 8)); // one chunk of 32 tokens

  it('are none for an empty query, no documents or nothing similar', () => {
    assert.deepEqual(select([], [eight], 64), []);
    assert.deepEqual(select([30], [], 64), []);
    assert.deepEqual(select([90, 91], [eight], 64), []);
  });

  it('take a whole chunk that fits with its [FILE] and the final [FILE]', () => {
    assert.deepEqual(select([30, 31, 32], [eight], 34), [Array.from(eight)], '1 + 32 + 1 = 34');
  });

  it('cut the chunk that does not fit to what is left, when that is at least MIN_CHUNK_TOKENS', () => {
    assert.deepEqual(select([30, 31, 32], [eight], 20), [Array.from(eight.subarray(0, 18))], '20 = [FILE] + 18 + [FILE]');
    assert.deepEqual(select([30, 31, 32], [eight], 10), [Array.from(eight.subarray(0, 8))]);
    assert.deepEqual(select([30, 31, 32], [eight], 9), [], 'a cut of 7 tokens is too short');
    assert.deepEqual(select([30, 31, 32], [eight], 1), []);
  });

  it('keep a chunk that scores exactly MIN_SCORE and leave out one just below', () => {
    const exactly = Int32Array.from([30, 40, 41, 42, 43, 44, 45, 46, 47, NL]); // 10 distinct ids, 1 shared
    const below = Int32Array.from([30, 40, 41, 42, 43, 44, 45, 46, 47, 48, NL]); // 11 distinct ids, 1 shared
    assert.equal(jaccard(exactly, new Set([30])), MIN_SCORE);
    assert.deepEqual(select([30], [below, exactly], 64), [Array.from(exactly)]);
  });

  it('leave out chunks shorter than MIN_CHUNK_TOKENS however similar', () => {
    assert.deepEqual(select([30, 31, 32], [Int32Array.from([30, 31, 32, NL, 30, 31, 32])], 64), []);
  });

  it('skip a chunk that overlaps one already chosen, and put the best last, next to the text', () => {
    const first = lines(...repeat([50, 51], 4), ...repeat([30, 31], 4), ...repeat([60, 61], 4));
    const second = lines(...repeat([30, 70, 71, 72], 8));
    // first: chunks [0, 24) and [12, 36), both 0.4; second: [0, 40), 1/6.
    const ranges = chooseChunks(Int32Array.from([30, 31]), [first, second], isNewline, 100);
    assert.deepEqual(ranges, [
      { doc: 0, begin: 0, end: 24 },
      { doc: 1, begin: 0, end: 40 },
    ]);
    assert.deepEqual(select([30, 31], [first, second], 100), [Array.from(second), Array.from(first.subarray(0, 24))]);
  });

  it('cut the next chunk to the budget left by the ones chosen, then stop', () => {
    const other = lines(...repeat([30, 80, 81, 82], 4));
    const chosen = select([30, 31, 32], [eight, other], 50);
    assert.deepEqual(chosen, [Array.from(other.subarray(0, 15)), Array.from(eight)]);
    assert.equal(chosen.reduce((sum, c) => sum + 1 + c.length, 1), 50);
  });

  it('break ties by document, then by position', () => {
    const a = lines(...repeat([30, 31, 90], 8));
    const b = lines(...repeat([30, 31, 91], 8));
    assert.deepEqual(chooseChunks(Int32Array.from([30, 31]), [a, b], isNewline, 200), [
      { doc: 0, begin: 0, end: 32 },
      { doc: 1, begin: 0, end: 32 },
    ]);
  });
});

interface FixtureCase {
  readonly name: string;
  readonly query: number[];
  readonly others: number[][];
  readonly newline_ids: number[];
  readonly budget: number;
  readonly expected: number[][];
}

describe('snippet selection (shared fixture test/fixtures/related-snippets-cases.json, from models/recipe/unmask/related.py)', () => {
  const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'related-snippets-cases.json'), 'utf8')) as { cases: FixtureCase[] };

  it('has cases, some of which choose several chunks', () => {
    assert.ok(fixture.cases.length > 0);
    assert.ok(fixture.cases.some((c) => c.expected.length > 1));
  });

  for (const c of fixture.cases) {
    it(`chooses what the trainer chooses: ${c.name}`, () => {
      const newline = new Set(c.newline_ids);
      const chosen = selectSnippets(
        Int32Array.from(c.query),
        c.others.map((ids) => Int32Array.from(ids)),
        (id) => newline.has(id),
        c.budget,
      ).map((chunk) => Array.from(chunk));
      assert.deepEqual(chosen, c.expected);
      if (chosen.length > 0) assert.ok(chosen.reduce((sum, chunk) => sum + 1 + chunk.length, 1) <= c.budget, 'within the budget');
    });
  }
});
