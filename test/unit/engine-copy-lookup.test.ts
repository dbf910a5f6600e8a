import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { copyFromFile, copyFromOtherFiles, longestRepeatedTail, MAX_OTHER_RUN } from '../../server/engine/copy-lookup';

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

describe('the copy from other open files', () => {
  const prefix = "import {_, str} from '../../compile/codegen'\n\nconst def: CodeKe";
  const sibling = "import type {CodeKeywordDefinition} from '../../types'\n\nconst def: CodeKeywordDefinition = {\n  keyword: 'enum',\n";

  it('continues the longest tail of the prefix the way another file did, to the end of that line', () => {
    assert.deepEqual(copyFromOtherFiles(prefix, ['nothing here', sibling]), { text: 'ywordDefinition = {', matchLength: "'\n\nconst def: CodeKe".length });
  });

  it('takes the file with the longest run, the most recent one on a tie', () => {
    const shorter = 'def: CodeKeyOther\n';
    const same = "'\n\nconst def: CodeKeywordSchema\n";
    assert.equal(copyFromOtherFiles(prefix, [shorter, sibling])?.text, 'ywordDefinition = {');
    assert.equal(copyFromOtherFiles(prefix, [same, sibling])?.text, 'ywordSchema', 'the first of two equal runs');
  });

  it('skips a blank continuation, and finds nothing without a shared tail or other files', () => {
    assert.equal(copyFromOtherFiles('x = 1\ny = ', ['y = \n']), undefined);
    assert.equal(copyFromOtherFiles('qwerty', ['uiop']), undefined);
    assert.equal(copyFromOtherFiles(prefix, []), undefined);
  });

  it('looks for at most MAX_OTHER_RUN characters of the prefix', () => {
    let seed = 7;
    const long = Array.from({ length: MAX_OTHER_RUN * 2 }, () => String.fromCharCode(97 + ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 26))).join('');
    assert.deepEqual(copyFromOtherFiles(long, [`${long}b\n`]), { text: 'b', matchLength: MAX_OTHER_RUN });
  });
});
