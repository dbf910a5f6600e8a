import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  asLineAboveCode,
  finishHoleText,
  holeTokensToText,
  indentationStyle,
  mergeNearDuplicates,
  nearDuplicateKey,
  rankBy,
  tidyIndentation,
  trimAgainstSuffix,
} from '../../server/engine/postprocess';
import { CharCodec, EOS, FACTS, FILE_SEP, MASK, PAD, tok } from './engine-mocks';

const codec = new CharCodec();
const ids = (text: string): number[] => Array.from(text, tok);

describe('turning a hole of tokens into text', () => {
  const cases: [string, number[], string, number][] = [
    ['cuts at the first end-of-span', [...ids('ab'), EOS, ...ids('cd'), EOS], 'ab', 2],
    ['is empty when the hole starts with end-of-span', [EOS, ...ids('x')], '', 0],
    ['keeps everything when there is no end-of-span', ids('abc'), 'abc', 3],
    ['never lets a special token through', [tok('a'), MASK, PAD, 4, FILE_SEP, tok('b'), EOS], 'ab', 2],
  ];
  for (const [name, tokens, text, kept] of cases) {
    it(name, () => {
      const result = holeTokensToText(tokens, codec, FACTS);
      assert.equal(result.text, text);
      assert.equal(result.tokenIds.length, kept);
      assert.ok(!result.text.includes('<|'));
    });
  }
});

describe('trimming a completion against the text after the cursor', () => {
  // [case, text before the cursor, completion, text after the cursor, expected completion]
  const cases: [string, string, string, string, string][] = [
    ['drops a closing bracket that is already there', 'foo(', 'a, b)', ')', 'a, b'],
    ['keeps a bracket the completion opened itself', 'foo(', 'bar()', ')', 'bar()'],
    ['drops a closing square bracket that is already there', 'xs = [', '1, 2]', ']', '1, 2'],
    ['drops a repeated closing bracket and semicolon', 'f(', 'x);', ');', 'x'],
    ['drops a closing quote that is already there', 'x = "', 'hello"', '"', 'hello'],
    ['keeps quotes that close and reopen a string', 'x = "', 'a" + "b', '"', 'a" + "b'],
    ['drops a closing brace that is already on the next line', 'function f() {\n  ', 'return 1;\n}', '\n}', 'return 1;'],
    ['keeps a call that closes itself inside an outer call opened lines ago', 'foo(\n  a, ', 'bar()', ')', 'bar()'],
    ['drops a bracket that closes an outer call opened lines ago', 'foo(\n  a, ', 'b)', ')', 'b'],
    ['drops a closing bracket that follows a space', 'foo(', 'a)', ' )', 'a'],
    ['drops the rest of the line when the completion repeats it', 'foo(', 'a, b);', 'b);', 'a, '],
    ['drops the whole completion when it only repeats the rest of the line', 'console.log(', 'value);', 'value);\n', ''],
    ['keeps a word that merely ends like the rest of the line', 'x = ', 'max', 'x\n', 'max'],
    ['keeps a completion when nothing follows the cursor', 'x = ', '1', '', '1'],
    ['keeps a completion that does not repeat what follows', 'if (', 'x > 0', ') {', 'x > 0'],
  ];
  for (const [name, before, completion, after, expected] of cases) {
    it(name, () => assert.equal(trimAgainstSuffix(completion, before, after), expected));
  }
});

describe('indentation sanity', () => {
  // [case, text before the cursor, completion, text after the cursor, expected completion]
  const cases: [string, string, string, string, string][] = [
    ['removes trailing whitespace from every line', '', 'a  \nb\t\nc', '\n', 'a\nb\nc'],
    ['removes trailing blank lines when nothing follows on the cursor line', 'x = ', '1\n\n  ', '\nnext()', '1'],
    ['keeps a trailing newline and indentation when text follows the cursor', 'x', 'y\n    ', 'z', 'y\n    '],
    ['turns tabs into the document indentation in a document indented with spaces', 'def f():\n    if x:\n        pass\n', 'if y:\n\treturn 1', '\n', 'if y:\n    return 1'],
    ['uses the document indentation step', 'a:\n  b:\n    c\n', 'd:\n\te', '', 'd:\n  e'],
    ['keeps tabs in a document indented with tabs', 'void f() {\n\tint x;\n', 'if (x) {\n\t\treturn;\n\t}', '\n}', 'if (x) {\n\t\treturn;\n\t}'],
  ];
  for (const [name, before, completion, after, expected] of cases) {
    it(name, () => assert.equal(tidyIndentation(completion, before, after), expected));
  }

  it('detects the indentation style of a document', () => {
    assert.deepEqual(indentationStyle('a\n  b\n    c\n  d'), { spacesOnly: true, unit: 2 });
    assert.deepEqual(indentationStyle('a\n\tb'), { spacesOnly: false, unit: 4 });
    assert.deepEqual(indentationStyle('no indentation'), { spacesOnly: false, unit: 4 });
  });
});

describe('finishing a hole', () => {
  const blank: [string, string][] = [
    ['spaces', '   '],
    ['newlines and tabs', '\n\t\n'],
    ['nothing', ''],
  ];
  for (const [name, text] of blank) {
    it(`drops a completion of only ${name}`, () => assert.equal(finishHoleText(text, 'x = ', '\n'), ''));
  }

  it('tidies and trims in one go', () => {
    assert.equal(finishHoleText('a, b)  ', 'foo(', ')\n'), 'a, b');
  });
});

describe('merging and ranking candidates', () => {
  it('treats candidates that differ only in whitespace as the same', () => {
    assert.equal(nearDuplicateKey(['a  b\n']), nearDuplicateKey(['a b']));
    assert.notEqual(nearDuplicateKey(['a', 'b']), nearDuplicateKey(['a b']));
  });

  it('keeps the first of each group of near-duplicates', () => {
    const merged = mergeNearDuplicates(['a  b', 'c', 'a b', 'a\nb', 'c '], (text) => [text]);
    assert.deepEqual(merged, ['a  b', 'c']);
  });

  it('ranks by the score, best first, keeping the order of equal scores', () => {
    const ranked = rankBy(
      [
        { name: 'low', score: -3 },
        { name: 'tie-first', score: -1 },
        { name: 'tie-second', score: -1 },
        { name: 'best', score: 0 },
      ],
      (c) => c.score,
    );
    assert.deepEqual(ranked.map((c) => c.name), ['best', 'tie-first', 'tie-second', 'low']);
  });
});

describe('a line written above code that follows the cursor', () => {
  it('keeps a line break of its own, and the typed indentation goes back before that code', () => {
    assert.equal(asLineAboveCode('    y += 1', 'def f(y):\n', '    return y\n'), '    y += 1\n');
    assert.equal(asLineAboveCode('y += 1', 'def f(y):\n    ', 'return y'), 'y += 1\n    ');
  });
  it('leaves the text alone mid-line, on an empty line, and when it has several lines', () => {
    assert.equal(asLineAboveCode('1', 'y = ', 'x\n'), '1');
    assert.equal(asLineAboveCode('y += 1', 'def f(y):\n    ', '\n    return y'), 'y += 1');
    assert.equal(asLineAboveCode('y += 1', 'def f(y):\n', ''), 'y += 1');
    assert.equal(asLineAboveCode('a\nb', 'def f(y):\n', 'return y'), 'a\nb');
  });
});
