import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { copyMatch, withCopyFirst } from '../../server/protocol/copy-candidate';

const before = 'result = compute(items, key=len, reverse=True)\nprint(result)\nother = compute(items, ';
const file = { before, after: ')\nprint(other)\n' };
const copyCandidate = (f: typeof file, minMatch: number): string | undefined => copyMatch(f, minMatch)?.text;

describe('the copy candidate', () => {
  it('copies what followed a long repeated run, without the closing bracket already after the cursor', () => {
    assert.equal(copyCandidate(file, 16), 'key=len, reverse=True');
  });

  it('says how long the repeated run that found it is (what the gate reads)', () => {
    // ' = compute(items, ' (18 characters) is the longest tail of the text before the cursor found earlier.
    assert.deepEqual(copyMatch(file, 16), { text: 'key=len, reverse=True', matchLength: 18 });
    assert.equal(copyMatch(file, 19), undefined);
  });

  it('is a line of its own at the start of a line that holds code', () => {
    const lineStart = { before: 'def f(a):\n    a.x += 1\n    return a\n\ndef g(a):\n', after: '    return a\n' };
    assert.equal(copyCandidate(lineStart, 4), '    a.x += 1\n');
  });

  it('is withheld when the repeated run is shorter than the threshold, or the threshold is 0', () => {
    assert.equal(copyCandidate(file, 100), undefined);
    assert.equal(copyCandidate(file, 0), undefined);
  });

  it('goes first, or moves the model row that says the same to the front', () => {
    const make = (text: string) => `copy:${text}`;
    assert.deepEqual(withCopyFirst(['a()', 'b()'], 'c()', (t) => t, make), ['copy:c()', 'a()', 'b()']);
    assert.deepEqual(withCopyFirst(['a()', 'b( )'], 'b()', (t) => t, make), ['b( )', 'a()']);
    assert.deepEqual(withCopyFirst(['a()'], undefined, (t) => t, make), ['a()']);
  });
});
