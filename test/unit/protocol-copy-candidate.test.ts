import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COPY_LEAD_MIN_MATCH, copyMatch, leadingCopy, OTHER_FILE_MIN_MATCH, withCopyRow } from '../../server/protocol/copy-candidate';

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

  it('goes first from a long run, or moves the model row that says the same to the front', () => {
    const make = (text: string) => `copy:${text}`;
    const long = (text: string) => ({ text, matchLength: COPY_LEAD_MIN_MATCH });
    assert.deepEqual(withCopyRow(['a()', 'b()'], long('c()'), (t) => t, make), ['copy:c()', 'a()', 'b()']);
    assert.deepEqual(withCopyRow(['a()', 'b( )'], long('b()'), (t) => t, make), ['b( )', 'a()']);
    assert.deepEqual(withCopyRow(['a()'], undefined, (t) => t, make), ['a()']);
    assert.deepEqual(withCopyRow([], { text: 'c()', matchLength: 4 }, (t) => t, make), ['copy:c()'], 'no model row: the copy alone');
  });

  it('goes second, after the best row, from a short run the best row disagrees with', () => {
    const make = (text: string) => `copy:${text}`;
    const short = (text: string) => ({ text, matchLength: COPY_LEAD_MIN_MATCH - 1 });
    assert.deepEqual(withCopyRow(['a()', 'b()'], short('c()'), (t) => t, make), ['a()', 'copy:c()', 'b()']);
    assert.deepEqual(withCopyRow(['a()', 'b( )'], short('b()'), (t) => t, make), ['a()', 'b( )'], 'the second row says the same');
    assert.deepEqual(withCopyRow(['a( )', 'b()'], short('a()'), (t) => t, make), ['a( )', 'b()'], 'the best row says the same: it leads');
    assert.deepEqual(withCopyRow(['a()\nb()\nc()', 'd()'], short('a()'), (t) => t, make), ['copy:a()', 'a()\nb()\nc()', 'd()'], 'the same first line: the copy leads');
    assert.equal(leadingCopy(short('c()'), 'a()'), undefined, 'the gate judges the model row');
    assert.deepEqual(leadingCopy(short('a()'), 'a( )'), short('a()'));
    assert.deepEqual(leadingCopy(short('c()'), undefined), short('c()'), 'nothing else to show');
  });

  it('copies from another open file when its run is long enough and longer than the document\'s own', () => {
    const here = { before: 'x = 1\nresult = compute(items, ', after: ')\n' };
    const other = 'y = 2\nresult = compute(items, key=len)\n';
    // '\nresult = compute(items, ' (25 characters) recurs in the other file only; the document repeats nothing.
    assert.deepEqual(copyMatch({ ...here, others: [other] }, 4), { text: 'key=len', matchLength: 25 });
    assert.equal(copyMatch(here, 4), undefined, 'no other files: no copy');
    assert.equal(copyMatch({ ...here, others: [other] }, 0), undefined, 'copy off');
    const short = { before: 'x = 1\nr = f(', after: ')\n', others: ['r = f(a, b)\n'] };
    assert.ok(' r = f('.length < OTHER_FILE_MIN_MATCH);
    assert.equal(copyMatch(short, 4), undefined, 'a short run across files is chance');
    // The document's own run is as long as the other file's: the document's copy.
    assert.equal(copyMatch({ ...file, others: ['x = compute(items, flag)\n'] }, 4)?.text, 'key=len, reverse=True');
  });
});
