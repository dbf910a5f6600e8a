import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { copyFromFile, longestRepeatedTail } from '../../server/engine/copy-lookup';

interface CopyCase {
  prefix: string;
  suffix: string;
  matchLength: number;
  start: number;
  copy: string | null;
}

// Expected values come from the recipe's baseline (models/recipe/unmask/metrics.py), so the extension's copy candidate and
// the eval's copy row are the same text; models/recipe/tests/test_copy.py checks the Python side against the same file.
const fixture = JSON.parse(readFileSync(path.join(__dirname, '..', 'fixtures', 'copy-cases.json'), 'utf8')) as { cases: CopyCase[] };

describe('the copy-from-file lookup', () => {
  for (const c of fixture.cases) {
    it(`agrees with the recipe on ${JSON.stringify(c.prefix.slice(-24))}`, () => {
      assert.deepEqual(longestRepeatedTail(c.prefix, c.prefix + c.suffix), { length: c.matchLength, start: c.start });
      const match = copyFromFile(c.prefix, c.suffix);
      assert.equal(match?.text ?? null, c.copy);
      if (match) assert.equal(match.matchLength, c.matchLength);
    });
  }

  it('continues a repeated call the way it went on before', () => {
    const prefix = 'total = compute(items, key=len)\nprint(total)\nresult = compute(items, ';
    assert.deepEqual(copyFromFile(prefix, '\n'), { text: 'key=len)', matchLength: ' = compute(items, '.length });
  });

  it('finds nothing in text that never repeats', () => {
    assert.equal(copyFromFile('qwerty', 'uiop'), undefined);
  });
});
